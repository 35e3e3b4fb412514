"""gate(): may the candidate replace the baseline? A paired test per metric, Holm's correction across metrics.

Tests: `superiority` (better by more than `margin`, default 0; with margin 0 this is the original gate: the
lower end of the interval at least `min_delta`), `non_inferiority` (no worse than `margin`), `equivalence`
(two one-sided tests: within +-margin). The decision rule lives in `verdicts.decide` (see there for the
statistics). Binary scores (exact match, pass/fail judges) also get an exact McNemar test and a table of
flips, shown beside the bootstrap's verdict (which decides, as it always has; the line says when the exact
test alone would not yet call an improvement). Every verdict names its test, margin, interval,
rows and the minimum detectable effect, so "no regression detected" on 12 rows reads as what it is.
"""

from __future__ import annotations

import html
import json
import math
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import ConfigError
from workbench.evals.record import EvalWarning, flush_records, metric_key
from workbench.evals.result import EvalResult
from workbench.evals.stats import mcnemar_exact
from workbench.evals.verdicts import check_test, decide, holm, min_detectable_effect
from workbench.secrets import redact
from workbench.tracking.backend import current_uri, ensure_mlflow
from workbench.verbatim import NO_MATH

__all__ = ["VERDICT_ARTIFACT", "GateResult", "gate"]

VERDICT_ARTIFACT = "verdict.json"


@dataclass(frozen=True)
class GateResult:
    """Whether the candidate may ship: `bool(result)`, `.passed`, `.reason`, the paired interval of the delta.

    With several metrics the fields describe the metric that decided, and `.metrics` holds every metric's own
    verdict (Holm-adjusted p-values in `.p_adjusted`)."""

    passed: bool
    metric: str
    delta: float  # mean of candidate - baseline over the rows both scored
    ci_low: float
    ci_high: float
    confidence: float
    min_delta: float
    n: int
    mean_candidate: float
    mean_baseline: float
    wins: int
    ties: int
    losses: int
    reason: str
    test: str = "superiority"
    margin: float = 0.0
    p_value: float = float("nan")
    p_adjusted: float = float("nan")
    mde: float = float("nan")  # smallest true difference these rows detect at `power`
    power: float = 0.8
    regression: bool = False  # the candidate is worse, with confidence (Holm-adjusted across metrics)
    mcnemar_p: float | None = None  # binary scores: exact two-sided McNemar p on the discordant rows
    flips: dict[str, int] | None = None  # binary scores: pass->fail, fail->pass, pass->pass, fail->fail
    judge_noise_sd: float = 0.0  # judge repeats: the noise added to the interval (sd of the mean delta)
    metrics: tuple[GateResult, ...] = field(default=(), repr=False)

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        line = f"{'PASS' if self.passed else 'FAIL'}: {self.reason}"
        if len(self.metrics) > 1:
            line += f" (decided by {self.metric} of {len(self.metrics)} metrics, Holm-corrected)"
        return line

    def __repr__(self) -> str:
        return f"<GateResult {self}>"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["metrics"] = [m.to_dict() for m in self.metrics] if len(self.metrics) > 1 else []
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in data.items()}

    def _repr_html_(self) -> str:
        color = "#2e7d32" if self.passed else "#c62828"
        head = f'<div class="{NO_MATH}" style="color:{color};font-weight:600">{html.escape(str(self))}</div>'
        rows = self.metrics if len(self.metrics) > 1 else (self,)
        cells = "".join(
            f"<tr><td>{html.escape(m.metric)}</td><td>{'PASS' if m.passed else 'FAIL'}</td>"
            f"<td>{m.delta:+.3f} [{m.ci_low:+.3f}, {m.ci_high:+.3f}]</td><td>{m.n}</td><td>{_num(m.p_adjusted)}</td>"
            f"<td>{_num(m.mde)}</td><td>{'yes' if m.regression else 'no'}</td>"
            f"<td>{html.escape(_flips(m.flips))}</td></tr>" for m in rows)
        table = ("<table><tr><th>metric</th><th>verdict</th><th>delta [interval]</th><th>n</th><th>p (Holm)</th>"
                 f"<th>MDE ({self.power:.0%} power)</th><th>regression</th><th>flips</th></tr>{cells}</table>")
        return f'<div class="wb-gate {NO_MATH}">{head}{table}</div>'


def _num(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.3g}"


def _flips(flips: dict[str, int] | None) -> str:
    if not flips:
        return ""
    return f"pass->fail {flips['pass->fail']}, fail->pass {flips['fail->pass']}"


def _load(item: EvalResult | str, role: str) -> EvalResult:
    if isinstance(item, EvalResult):
        result = item
    elif isinstance(item, str) and item.strip():
        result = EvalResult.from_run(item.strip())
    else:
        raise ConfigError(f"{item!r:.80} is neither an EvalResult nor an MLflow run id of an evaluation")
    if len(result.models) != 1:
        raise ConfigError(f"the {role} evaluation has {len(result.models)} models ({', '.join(result.models)}): "
                          f"pass one, e.g. result.for_model({result.models[0]!r})")
    return result


def _column(result: EvalResult, name: str) -> Any:
    return result.table.drop_duplicates("row_key").set_index("row_key")[name].astype(float)


def _noise_var(new: EvalResult, old: EvalResult, metric: str, keys: Any) -> float:
    """Variance of the mean delta that the judges' own disagreement adds (repeated judgings only)."""
    total = 0.0
    for result in (new, old):
        if f"{metric}_sd" not in result.table or f"{metric}_k" not in result.table:
            continue
        sd, k = _column(result, f"{metric}_sd").reindex(keys), _column(result, f"{metric}_k").reindex(keys)
        per_row = (sd.fillna(0.0) ** 2 / k.clip(lower=1).fillna(1.0))
        total += float(per_row.sum())
    return total / max(1, len(keys)) ** 2


def _one(new: EvalResult, old: EvalResult, metric: str, test: str, margin: float, confidence: float,
         power: float) -> dict[str, Any]:
    import numpy as np

    a, b = _column(new, metric), _column(old, metric)
    a, b = a.align(b, join="inner")
    keep = a.notna() & b.notna()
    a, b = a[keep], b[keep]
    delta = (a - b).to_numpy()
    noise = _noise_var(new, old, metric, a.index)
    decision = decide(delta[None, :] if delta.size else np.zeros((1, 0)), test=test, margin=margin,
                      confidence=confidence, noise_var=noise)
    out: dict[str, Any] = {
        "metric": metric, "n": int(delta.size), "delta": float(decision.mean[0]), "ci_low": float(decision.low[0]),
        "ci_high": float(decision.high[0]), "p": float(decision.p[0]), "p_worse": float(decision.p_worse[0]),
        "wins": int((delta > 0).sum()), "ties": int((delta == 0).sum()), "losses": int((delta < 0).sum()),
        "mean_candidate": float(a.mean()) if len(a) else float("nan"),
        "mean_baseline": float(b.mean()) if len(b) else float("nan"),
        "mde": min_detectable_effect(float(np.std(delta, ddof=1)) if delta.size > 1 else float("nan"), delta.size,
                                     confidence=confidence, power=power),
        "noise_sd": noise ** 0.5, "mcnemar_p": None, "flips": None,
    }
    values = np.concatenate([a.to_numpy(), b.to_numpy()])
    if delta.size and np.isin(values, (0.0, 1.0)).all():  # binary scores: the exact test and the flips
        up, down = int(((b == 0) & (a == 1)).sum()), int(((b == 1) & (a == 0)).sum())
        out["flips"] = {"pass->fail": down, "fail->pass": up, "pass->pass": int(((a == 1) & (b == 1)).sum()),
                        "fail->fail": int(((a == 0) & (b == 0)).sum())}
        out["mcnemar_p"] = float(mcnemar_exact(down, up))
        # the exact one-sided p of an improvement: shown beside the bootstrap's verdict (it does not overrule it)
        out["mcnemar_better_p"] = float(mcnemar_exact(down, up, "greater"))
    return out


def _reason(part: dict[str, Any], test: str, margin: float, confidence: float, passed: bool, min_delta: float,
            power: float) -> str:
    metric, level = part["metric"], f"{confidence:.0%}"
    if part["n"] == 0:
        return f"no row has a {metric} score in both evaluations: nothing to compare (check the datasets match)"
    interval = f"{part['delta']:+.3f} [{part['ci_low']:+.3f}, {part['ci_high']:+.3f}] ({level}, {part['n']} rows)"
    if test == "superiority":
        verdict = "is at least" if passed else "is below"
        claim = f"its lower bound {verdict} min_delta {min_delta:+.3f}"
    elif test == "non_inferiority":
        claim = f"{'' if passed else 'not shown '}non-inferior within margin {margin:.3f}"
    else:
        claim = (f"equivalent within +-{margin:.3f} (two one-sided tests)" if passed
                 else f"not shown equivalent within +-{margin:.3f} (two one-sided tests)")
    text = (f"{metric} delta {interval}; {claim}; wins/ties/losses {part['wins']}/{part['ties']}/{part['losses']}; "
            f"test {test}, margin {margin:.3f}, p {part['p_adj']:.3g}; MDE {part['mde']:.3f} at {power:.0%} power")
    if part["mcnemar_p"] is not None:
        flips = part["flips"]
        text += (f"; McNemar exact p {part['mcnemar_p']:.3g} (pass->fail {flips['pass->fail']}, "
                 f"fail->pass {flips['fail->pass']})")
        exact_better = part["mcnemar_better_p"] <= (1 - confidence) / 2
        if test == "superiority" and margin == 0 and passed and not exact_better and flips["fail->pass"]:
            text += " - on its own the exact test would not yet call it better"
    if part["noise_sd"] > 0:
        text += f"; judge noise +-{part['noise_sd']:.3f} added to the interval"
    if part["regression"]:
        text += "; a regression is detected"
    return text


def gate(candidate: EvalResult | str, baseline: EvalResult | str, metric: str | Sequence[str] = "similarity",
         min_delta: float = 0.0, confidence: float = 0.95, *, test: str = "superiority", margin: float | None = None,
         power: float = 0.8, log: bool = True) -> GateResult:
    """Pass when the candidate beats (`superiority`), is no worse than (`non_inferiority`) or is within
    `margin` of (`equivalence`) the baseline on `metric`: a paired bootstrap over the rows both scored.

    superiority: the lower end of the `confidence` interval of (candidate - baseline) is at least `min_delta`
    (or `margin`); min_delta=-0.1 tolerates a small regression. non_inferiority / equivalence need margin > 0.
    metric: a name or a list of names; with several, Holm's correction keeps the chance of any false claim
    at (1 - confidence) / 2 per direction, every metric must pass, and the verdict names the deciding one.
    log: record the verdict in the candidate's MLflow run (params, metrics, verdict.json)."""
    if not 0.5 <= confidence < 1:
        raise ConfigError(f"confidence={confidence!r} must be in [0.5, 1), e.g. 0.95")
    if isinstance(power, bool) or not isinstance(power, int | float) or not 0.5 <= power < 1:
        raise ConfigError(f"power={power!r} must be in [0.5, 1), e.g. 0.8")
    if test == "superiority" and margin is None:
        margin = min_delta
    elif test != "superiority" and min_delta:
        raise ConfigError(f"min_delta={min_delta!r} belongs to the superiority test: with test={test!r} pass "
                          "margin=... (a positive number)")
    margin = check_test(test, margin)
    metrics = [metric] if isinstance(metric, str) else list(metric) if isinstance(metric, list | tuple) else None
    if not metrics or not all(isinstance(m, str) for m in metrics) or len(set(metrics)) != len(metrics):
        raise ConfigError(f"metric={metric!r:.80} must be a scorer name or a list of distinct names, e.g. "
                          "metric=['token_f1', 'exact_match']")
    new, old = _load(candidate, "candidate"), _load(baseline, "baseline")
    for name in metrics:
        for result, role in ((new, "candidate"), (old, "baseline")):
            if name not in result.scorers:
                raise ConfigError(f"the {role} evaluation has no {name!r} scores (it has {', '.join(result.scorers)}"
                                  "): pass metric=... or evaluate with that scorer")
    parts = [_one(new, old, name, test, margin, confidence, power) for name in metrics]
    one_sided = (1 - confidence) / 2
    for part, p_adj, p_worse in zip(parts, holm([p["p"] for p in parts]), holm([p["p_worse"] for p in parts]),
                                    strict=True):
        part["p_adj"], part["regression"] = p_adj, part["n"] > 0 and p_worse <= one_sided
    results = []
    for part in parts:
        passed = part["n"] > 0 and part["p_adj"] <= one_sided
        reason = _reason(part, test, margin, confidence, passed, margin if test == "superiority" else min_delta,
                         power)
        if new.digest != old.digest:
            reason += "; the datasets differ (different digests): only rows in both were compared"
        results.append(GateResult(
            passed, part["metric"], part["delta"], part["ci_low"], part["ci_high"], confidence,
            float(margin if test == "superiority" else min_delta), part["n"], part["mean_candidate"],
            part["mean_baseline"], part["wins"], part["ties"], part["losses"], reason, test, margin, part["p"],
            part["p_adj"], part["mde"], float(power), bool(part["regression"]), part["mcnemar_p"], part["flips"],
            part["noise_sd"]))
    failing = [r for r in results if not r.passed]
    # the deciding metric: the failing one furthest from passing, else the one that passed most narrowly
    decider = max(failing or results, key=lambda r: (r.p_adjusted if r.p_adjusted == r.p_adjusted else 2.0))
    verdict = GateResult(**{**{f: getattr(decider, f) for f in decider.__dataclass_fields__ if f != "metrics"},
                            "passed": not failing, "metrics": tuple(results)})
    if log and new.run_id:
        _record(verdict, new.run_id, old.run_id)
    return verdict


def _record(verdict: GateResult, run_id: str, baseline_run: str | None) -> None:
    """The verdict in the candidate's MLflow run: params (test, margin...), metrics per metric, verdict.json."""
    try:
        flush_records()
        mlflow = ensure_mlflow()
        from mlflow.entities import Metric, Param

        client = mlflow.MlflowClient(current_uri())
        existing = client.get_run(run_id).data.params
        params = {"gate.test": verdict.test, "gate.margin": f"{verdict.margin:g}",
                  "gate.confidence": f"{verdict.confidence:g}",
                  "gate.metrics": ", ".join(m.metric for m in verdict.metrics),
                  "gate.baseline_run": str(baseline_run)}
        fresh = [Param(k, v) for k, v in params.items() if k not in existing]  # params are write-once in MLflow
        now = int(time.time() * 1000)
        values: dict[str, float] = {"gate/passed": float(verdict.passed)}
        for m in verdict.metrics:
            for stat, value in (("delta", m.delta), ("ci_low", m.ci_low), ("ci_high", m.ci_high), ("n", m.n),
                                ("p", m.p_value), ("p_adjusted", m.p_adjusted), ("mde", m.mde),
                                ("judge_noise_sd", m.judge_noise_sd)):
                if not math.isnan(value):
                    values[metric_key("gate", m.metric, stat)] = float(value)
        client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in values.items()], params=fresh)
        client.set_tag(run_id, "workbench.gate", str(verdict)[:5000])
        with tempfile.TemporaryDirectory(prefix="wb-gate-") as folder:
            path = Path(folder) / VERDICT_ARTIFACT
            path.write_text(json.dumps(verdict.to_dict(), indent=1, default=str), encoding="utf-8")
            client.log_artifact(run_id, str(path))
    except Exception as exc:  # noqa: BLE001 - the verdict is returned either way; say it was not recorded
        warnings.warn(f"the gate's verdict was not recorded in run {run_id}: {redact(str(exc))[:300]}", EvalWarning,
                      stacklevel=3)
