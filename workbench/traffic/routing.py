"""`workbench.rollout(...)`: a baseline and a candidate behind one model name, with a share of calls to the candidate.

The rollout is a gateway weighted route (`workbench.route`), so the name works wherever a model string does
(`%%llm -m support`, `workbench.complete(..., model="support")`, evaluations). One departure from the plain route:
the variant is chosen by the rollout before the call, not by litellm's Router after it. The Router picks at random
per call and says which deployment answered only afterwards, while a rollout needs (1) sticky assignment: a user
(`tags["user"]`) always gets the same variant, from a hash of rollout and user, so raising the share only moves more
users to the candidate and none back; and (2) the variant known before the call, so the ledger row, the budget check
and the trace all carry `rollout=<name>` and `variant=baseline|candidate`. Calls without a user are assigned at random.

Every change (start, `.set(percent=)`, `.promote()`, `.rollback()`) is recorded in the rollout's MLflow run: the
`candidate_percent` metric over time, the state tag, and `rollout/events.json`.
"""

from __future__ import annotations

import hashlib
import html
import json
import random
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import ConfigError, WorkbenchWarning
from workbench.finetune.registry import client
from workbench.gateway.models import _check_name as check_name  # the same rules as alias and route names
from workbench.gateway.models import route, validate_model
from workbench.secrets import redact
from workbench.tracking.backend import backend, current_uri, default_experiment_name
from workbench.traffic import live
from workbench.traffic.live import get_rollout, rollouts
from workbench.traffic.monitor import RolloutReport, rollout_report
from workbench.verbatim import NO_MATH

__all__ = ["Rollout", "RolloutWarning", "rollout", "rollouts", "get_rollout", "bucket"]

_random = random.Random()  # noqa: S311 - assigns calls without a user to a variant; not a secret


class RolloutWarning(WorkbenchWarning):
    """The rollout changed, but the change could not be recorded in MLflow."""


def bucket(name: str, user: str) -> float:
    """A user's fixed place in [0, 100) for this rollout: the candidate serves users below its percent."""
    digest = hashlib.sha256(f"{name}\x00{user}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def _check_percent(percent: Any) -> float:
    if isinstance(percent, bool) or not isinstance(percent, int | float) or not 0 <= percent <= 100:
        raise ConfigError(f"percent={percent!r} must be a number from 0 to 100 (the candidate's share of calls), "
                          f"e.g. percent=10")
    return float(percent)


@dataclass
class Rollout:
    name: str
    baseline: str
    candidate: str
    percent: float
    state: str = "running"  # running | promoted | rolled_back | replaced
    run_id: str | None = None
    started: float = field(default_factory=time.time)
    events: list[dict[str, Any]] = field(default_factory=list)
    _client: Any = field(default=None, repr=False)

    # --- routing -----------------------------------------------------------------------------------------------

    def variant_for(self, user: str | None = None) -> str:
        """'candidate' or 'baseline': fixed per user, random per call without one."""
        place = bucket(self.name, user) if user else _random.random() * 100
        return "candidate" if place < self.percent else "baseline"

    def _pick(self, tags: dict[str, str]) -> tuple[str, dict[str, str]]:
        variant = self.variant_for(tags.get("user"))
        return (self.candidate if variant == "candidate" else self.baseline), {"rollout": self.name, "variant": variant}

    def _install(self) -> None:
        weights = {self.baseline: 100 - self.percent, self.candidate: self.percent}
        route(self.name, weights).pick = self._pick

    # --- changes -----------------------------------------------------------------------------------------------

    def set(self, percent: float) -> Rollout:
        """Send `percent` % of calls (users) to the candidate."""
        return self._change(_check_percent(percent), "running", "set")

    def promote(self) -> Rollout:
        """Every call to the candidate (still tagged variant=candidate, so monitoring goes on)."""
        return self._change(100.0, "promoted", "promote", end=True)

    def rollback(self) -> Rollout:
        """Every call back to the baseline."""
        return self._change(0.0, "rolled_back", "rollback", end=True)

    def _change(self, percent: float, state: str, action: str, *, end: bool = False) -> Rollout:
        if self.state == "replaced":
            raise ConfigError(f"rollout {self.name!r} was replaced by a newer workbench.rollout({self.name!r}, ...)")
        self.percent, self.state = percent, state
        self._install()
        self._record(action, percent=percent, end=end)
        return self

    def report(self) -> RolloutReport:
        """Per variant since this rollout started: calls, errors, latency, cost, thumbs and stars."""
        return rollout_report(self.name, since=self.started)

    # --- MLflow ------------------------------------------------------------------------------------------------

    def _start_run(self, experiment: str | None) -> None:
        try:
            self._client = client()
            experiment_id = backend(current_uri()).experiment_id(experiment or default_experiment_name())
            created = self._client.create_run(experiment_id, run_name=f"rollout {self.name}", tags={
                "workbench.source": "workbench.rollout", "workbench.rollout": self.name,
                "workbench.rollout.state": self.state})
            self.run_id = created.info.run_id
            for key, value in {"alias": self.name, "baseline": self.baseline, "candidate": self.candidate,
                               "sticky_by": "tags['user'] (sha256 bucket)"}.items():
                self._client.log_param(self.run_id, key, redact(value))
        except Exception as exc:  # the route works without a record; say so once
            warnings.warn(f"rollout {self.name!r} runs without an MLflow record: {redact(str(exc))[:200]}",
                          RolloutWarning, stacklevel=3)
            self._client = None

    def _record(self, action: str, *, percent: float, end: bool = False) -> None:
        self.events.append({"action": action, "percent": percent, "state": self.state, "at": time.time()})
        if self._client is None or self.run_id is None:
            return
        try:
            self._client.log_metric(self.run_id, "candidate_percent", percent, step=len(self.events) - 1)
            self._client.set_tag(self.run_id, "workbench.rollout.state", self.state)
            self._client.log_text(self.run_id, json.dumps(self.events, indent=1), "rollout/events.json")
            if end:
                self._client.set_terminated(self.run_id, "FINISHED")
        except Exception as exc:
            warnings.warn(f"rollout {self.name!r}: {action} was not recorded in MLflow: {redact(str(exc))[:200]}",
                          RolloutWarning, stacklevel=3)

    def __repr__(self) -> str:
        return (f"<Rollout {self.name!r} {self.state}: {self.percent:g}% to candidate {self.candidate} "
                f"(baseline {self.baseline})>")

    def _repr_html_(self) -> str:
        return (f"<div class='{NO_MATH}'><b>rollout {html.escape(self.name)}</b> &middot; "
                f"{html.escape(self.state)} &middot; "
                f"{self.percent:g}% &rarr; candidate <code>{html.escape(self.candidate)}</code>, "
                f"{100 - self.percent:g}% &rarr; baseline <code>{html.escape(self.baseline)}</code></div>")


def rollout(name: str, baseline: str, candidate: str, percent: float = 10, *, experiment: str | None = None) -> Rollout:
    """Put `baseline` and `candidate` behind the model name `name`, `percent` % of calls to the candidate (sticky
    per `tags["user"]`), every call tagged with its variant; returns the Rollout (.set, .promote, .rollback)."""
    name = check_name("rollout", name)
    for role, model in (("baseline", baseline), ("candidate", candidate)):
        if not isinstance(model, str) or not model.strip():
            raise ConfigError(f"{role}={model!r} must be a model string, e.g. {role}='local/smollm2'")
        validate_model(model)
    if baseline.strip() == candidate.strip():
        raise ConfigError(f"baseline and candidate are the same model ({baseline!r}): roll out a different one")
    if name in (baseline.strip(), candidate.strip()):
        raise ConfigError(f"rollout {name!r} cannot be named after its own baseline or candidate: pick an alias")
    created = Rollout(name, baseline.strip(), candidate.strip(), _check_percent(percent))
    previous = live.put(created)
    if previous is not None and previous.state == "running":
        previous.state = "replaced"
        previous._record("replaced", percent=previous.percent, end=True)
    created._install()
    created._start_run(experiment)
    created._record("start", percent=created.percent)
    return created

