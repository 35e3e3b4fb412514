"""EvalResult: the table (one row per dataset row and model), the summary with bootstrap intervals, a plot.

A result can be read back from its MLflow run (`EvalResult.from_run(run_id)`), so gates and comparisons
work on runs made in another process or by CI.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import ConfigError, StoreError, WorkbenchError
from workbench.evals.plots import plot_result
from workbench.evals.repeats import noise_table
from workbench.evals.stats import bootstrap_ci
from workbench.evals.verdicts import min_detectable_effect
from workbench.secrets import redact
from workbench.tracking import pending
from workbench.tracking.backend import ensure_mlflow
from workbench.tracking.gate import is_not_found
from workbench.verbatim import NO_MATH

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["EvalResult", "TABLE_ARTIFACT", "META_ARTIFACT"]

TABLE_ARTIFACT = "eval/table.json"
META_ARTIFACT = "eval/meta.json"
SUMMARY_COLUMNS = ["model", "scorer", "mean", "ci_low", "ci_high", "n", "parse_failures", "cost_usd", "mde"]


@dataclass
class EvalResult:
    table: pd.DataFrame
    models: list[str]
    scorers: list[str]
    dataset: str
    digest: str
    run_id: str | None = None
    interrupted: bool = False
    elapsed_s: float = 0.0
    judge: str | None = None
    prompt: str | None = None
    dataset_version: int | None = None
    scales: dict[str, tuple[float, float]] = field(default_factory=dict)
    judge_repeats: int = 1
    judge_mode: str = "parse"
    _summary: Any = field(default=None, repr=False)

    @property
    def summary(self) -> pd.DataFrame:
        """Per model and scorer: mean, 95 % bootstrap interval, n scored, parse failures, total cost, and the MDE:
        the smallest difference a paired comparison with another model on these rows would detect (80 % power,
        95 % gate, no correlation between the two assumed; `workbench.plan` does better with two runs)."""
        if self._summary is None:
            self._summary = self._summarize()
        return self._summary

    def _summarize(self) -> pd.DataFrame:
        import pandas as pd

        rows = []
        for model in self.models:
            part = self.table[self.table["model"] == model]
            cost = float(part["cost_usd"].fillna(0).sum() + part.get("judge_cost_usd", pd.Series(dtype=float))
                         .fillna(0).sum())
            for scorer in self.scorers:
                values = part[scorer].astype(float)
                low, high = bootstrap_ci(values.to_numpy())
                failed = int(part[f"{scorer}_failed"].sum()) if f"{scorer}_failed" in part else 0
                rows.append({"model": model, "scorer": scorer, "mean": float(values.mean()) if values.notna().any()
                             else float("nan"), "ci_low": low, "ci_high": high, "n": int(values.notna().sum()),
                             "parse_failures": failed, "cost_usd": cost,
                             "mde": min_detectable_effect(float(values.std(ddof=1)) * 2 ** 0.5,
                                                          int(values.notna().sum()))})
        return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)

    @property
    def judge_noise(self) -> pd.DataFrame:
        """With judge_repeats > 1, per model and judged scorer: the judge's self-agreement (share of rows whose
        judgings all agree), the mean within-row sd, and the sd that noise leaves on the mean."""
        return noise_table(self.table, self.models, self.scorers)

    @property
    def parse_failures(self) -> int:
        return int(sum(self.table[f"{s}_failed"].sum() for s in self.scorers if f"{s}_failed" in self.table))

    def mean(self, scorer: str, model: str | None = None) -> float:
        row = self._summary_row(scorer, model)
        return float(row["mean"])

    def _summary_row(self, scorer: str, model: str | None) -> Any:
        if scorer not in self.scorers:
            raise ConfigError(f"no scorer {scorer!r} in this evaluation: it has {', '.join(self.scorers)}")
        model = self._one_model(model)
        frame = self.summary
        return frame[(frame["model"] == model) & (frame["scorer"] == scorer)].iloc[0]

    def _one_model(self, model: str | None) -> str:
        if model is None:
            if len(self.models) > 1:
                raise ConfigError(f"this evaluation has {len(self.models)} models ({', '.join(self.models)}): "
                                  "pick one, e.g. result.for_model('...')")
            return self.models[0]
        if model not in self.models:
            raise ConfigError(f"no model {model!r} in this evaluation: it has {', '.join(self.models)}")
        return model

    def for_model(self, model: str) -> EvalResult:
        """The part of a several-model evaluation that one model answered."""
        model = self._one_model(model)
        part = self.table[self.table["model"] == model].reset_index(drop=True)
        return EvalResult(part, [model], list(self.scorers), self.dataset, self.digest, self.run_id,
                          self.interrupted, self.elapsed_s, self.judge, self.prompt, self.dataset_version,
                          dict(self.scales), self.judge_repeats, self.judge_mode)

    def scores(self, scorer: str) -> pd.Series:
        """One scorer's values for a one-model result, indexed by row key (how gates pair rows)."""
        self._summary_row(scorer, None)
        return self.table.set_index("row_key")[scorer].astype(float)

    # -- display
    def plot(self, ax: Any = None) -> Any:
        """Score distributions per model, one panel per scorer (matplotlib); returns the Figure."""
        return plot_result(self, ax)

    def __repr__(self) -> str:
        state = " (interrupted)" if self.interrupted else ""
        means = ", ".join(f"{r.model} {r.scorer}={r.mean:.3g}" for r in self.summary.itertuples())
        return (f"<EvalResult {self.dataset!r} {len(self.table)} rows{state}, run {self.run_id}: {means}; "
                f"{self.parse_failures} unparseable>")

    def _repr_html_(self) -> str:
        frame = self.summary.copy()
        for column in ("mean", "ci_low", "ci_high", "mde"):
            frame[column] = frame[column].map(lambda v: f"{v:.3f}" if v == v else "–")
        frame["cost_usd"] = frame["cost_usd"].map(lambda v: f"${v:.6f}")
        state = " <b>interrupted (Ctrl-C): partial</b>" if self.interrupted else ""
        head = (f"Evaluation of {html.escape(self.dataset)} (digest {html.escape(self.digest[:12])}): "
                f"{len(self.table)} rows, {self.elapsed_s:.1f} s, MLflow run {html.escape(str(self.run_id))}{state}")
        note = (f"<div>{self.parse_failures} judge answer(s) could not be read: NaN, left out of the means; "
                "see the *_raw columns of .table</div>") if self.parse_failures else ""
        mde = ("<div>mde: the smallest difference a paired comparison on these rows would detect (80 % power, "
               "95 % gate); <code>workbench.plan(...)</code> says how many rows a smaller one needs</div>")
        noise = ""
        if self.judge_repeats > 1:
            table = self.judge_noise.copy()
            for column in ("agreement", "within_row_sd", "noise_on_mean"):
                table[column] = table[column].map(lambda v: f"{v:.3f}" if v == v else "–")
            noise = (f"<div>Judge noise ({self.judge_repeats} judgings per row, {html.escape(self.judge_mode)}): "
                     f"agreement is the share of rows whose judgings all agree</div>"
                     f"{table.to_html(index=False, escape=True)}")
        table_html = frame.to_html(index=False, escape=True)
        return f"<div class='{NO_MATH}'><div>{head}</div>{table_html}{mde}{noise}{note}</div>"

    # -- persistence
    def meta(self) -> dict[str, Any]:
        return {"models": self.models, "scorers": self.scorers, "dataset": self.dataset, "digest": self.digest,
                "interrupted": self.interrupted, "elapsed_s": self.elapsed_s, "judge": self.judge,
                "prompt": self.prompt, "dataset_version": self.dataset_version,
                "scales": {k: list(v) for k, v in self.scales.items()}, "judge_repeats": self.judge_repeats,
                "judge_mode": self.judge_mode}

    @classmethod
    def from_run(cls, run_id: str) -> EvalResult:
        """Read an evaluation back from its MLflow run (its table and meta artifacts)."""
        import pandas as pd

        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no tqdm bars in a cell
        pending.flush()  # a run this process made (its traces, its record) is complete before it is read
        mlflow = ensure_mlflow()
        client = mlflow.MlflowClient()
        try:
            meta = json.loads(Path(client.download_artifacts(run_id, META_ARTIFACT)).read_text(encoding="utf-8"))
            table = pd.read_json(client.download_artifacts(run_id, TABLE_ARTIFACT), orient="records",
                                 dtype=False)
        except Exception as exc:
            if is_not_found(exc) or isinstance(exc, FileNotFoundError):
                raise WorkbenchError(f"run {run_id!r} is not a workbench evaluation (no {TABLE_ARTIFACT}): pass "
                                     "the run_id of an EvalResult") from None
            raise StoreError(f"reading evaluation run {run_id!r} failed: {redact(str(exc))[:300]}") from exc
        for scorer in meta["scorers"]:
            table[scorer] = pd.to_numeric(table[scorer], errors="coerce")
        return cls(table, meta["models"], meta["scorers"], meta["dataset"], meta["digest"], run_id,
                   meta.get("interrupted", False), meta.get("elapsed_s", 0.0), meta.get("judge"), meta.get("prompt"),
                   meta.get("dataset_version"), {k: tuple(v) for k, v in meta.get("scales", {}).items()},
                   meta.get("judge_repeats", 1), meta.get("judge_mode", "parse"))
