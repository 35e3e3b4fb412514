"""calibrate(): how far a judge agrees with human scores, before anyone trusts it.

Spearman's rho (does the judge rank answers like humans?), Cohen's quadratic-weighted kappa (does it give
the same grades?), exact agreement, a confusion table, and unparseable answers counted; logged to MLflow.
"""

from __future__ import annotations

import contextvars
import html
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import ConfigError, WorkbenchError, WorkbenchWarning
from workbench.evals.repeats import check_repeats
from workbench.evals.scoring import ScoreInput, ScorerSpec, as_scorer
from workbench.evals.stats import spearman, weighted_kappa
from workbench.gateway.models import validate_model
from workbench.secrets import redact
from workbench.tracking.backend import backend, current_uri, ensure_mlflow
from workbench.verbatim import NO_MATH

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["calibrate", "Calibration", "USABLE_KAPPA"]

USABLE_KAPPA = 0.6  # the usual bar for "substantial" agreement
_HUMAN = ("human_score", "human", "score", "label", "rating")


@dataclass
class Calibration:
    judge: str
    scorer: str
    n: int
    spearman: float
    kappa: float
    exact_agreement: float
    parse_failures: int
    confusion: pd.DataFrame  # rows: human score, columns: judge score
    table: pd.DataFrame
    run_id: str | None
    judge_mode: str = "parse"

    @property
    def rows(self) -> int:
        return max(1, len(self.table))

    @property
    def usable(self) -> bool:
        return self.kappa == self.kappa and self.kappa >= USABLE_KAPPA and self.parse_failures <= 0.1 * self.rows

    @property
    def verdict(self) -> str:
        if self.usable:
            return f"{self.judge} agrees with humans well enough (kappa {self.kappa:.2f} >= {USABLE_KAPPA})"
        why = []
        if self.kappa != self.kappa or self.kappa < USABLE_KAPPA:  # NaN (no agreement measurable) or too low
            why.append(f"weighted kappa {self.kappa:.2f} < {USABLE_KAPPA}" if self.kappa == self.kappa
                       else "no agreement measurable")
        if self.parse_failures > 0.1 * self.rows:
            why.append(f"{self.parse_failures} of {self.rows} answers unreadable")
        return f"{self.judge} is NOT a usable judge here: {'; '.join(why)}. Gate on deterministic scorers instead"

    def __repr__(self) -> str:
        return (f"<Calibration {self.judge} on {self.n} rows: spearman {self.spearman:.2f}, weighted kappa "
                f"{self.kappa:.2f}, exact {self.exact_agreement:.0%}, {self.parse_failures} unparseable>\n"
                f"{self.verdict}")

    def _repr_html_(self) -> str:
        color = "#2e7d32" if self.usable else "#c62828"
        head = (f"Judge {html.escape(self.judge)} ({html.escape(self.scorer)}) on {self.n} human-scored rows: "
                f"Spearman {self.spearman:.2f} · weighted kappa {self.kappa:.2f} · exact agreement "
                f"{self.exact_agreement:.0%} · {self.parse_failures} unparseable")
        return (f"<div class='{NO_MATH}'><div>{head}</div>"
                f"<div style='color:{color};font-weight:600'>{html.escape(self.verdict)}</div>"
                f"<div>Confusion (rows: human, columns: judge)</div>{self.confusion.to_html(escape=True)}</div>")


def _human_column(frame: Any, human: str | None) -> str:
    if human is not None:
        if human not in frame.columns:
            raise ConfigError(f"no column {human!r}: the columns are {', '.join(map(str, frame.columns))}")
        return human
    for name in _HUMAN:
        if name in frame.columns:
            return name
    raise ConfigError("the data needs a column of human scores (human_score), plus input, output and expected")


def _frame(data: pd.DataFrame | str | Path | list[dict[str, object]]) -> pd.DataFrame:
    """The calibration rows from a DataFrame, a list of dicts, or a CSV/JSONL path."""
    import pandas as pd

    if isinstance(data, str | Path):
        path = Path(data).expanduser()
        if not path.is_file():
            raise WorkbenchError(f"no file {str(data)!r}: check the path (relative paths start at {Path.cwd()})")
        try:
            return pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_json(path, lines=True)
        except (ValueError, UnicodeDecodeError) as exc:  # pandas' ParserError and EmptyDataError are ValueErrors
            raise WorkbenchError(f"cannot read {path.name}: {str(exc)[:200]}; write UTF-8 CSV (or JSONL) with input, "
                                 "output, expected and human_score") from None
    if hasattr(data, "columns"):
        return data
    if isinstance(data, list | tuple) and all(isinstance(r, dict) for r in data):
        return pd.DataFrame(list(data))
    raise ConfigError(f"data={data!r:.60} is not calibration data: pass a DataFrame, a list of dicts or a CSV/JSONL "
                      "path with input, output, expected and human_score columns")


def calibrate(judge: str, data: pd.DataFrame | str | Path | list[dict[str, object]], *,
              scorer: ScorerSpec = "similarity", human: str | None = None,
              concurrency: int = 4, experiment: str = "judge-calibration",
              judge_mode: str = "parse") -> Calibration:
    """Score `data` (a DataFrame or CSV/JSONL with input, output, expected and a human score 1-5) with `judge`,
    and measure agreement with the humans. Logged to MLflow as a run in `experiment`. judge_mode="logprobs"
    scores by the probability-weighted score tokens instead of parsing an answer (compare both)."""
    import numpy as np
    import pandas as pd

    if judge is not None:
        validate_model(judge)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= 256:
        raise ConfigError(f"concurrency={concurrency!r} must be a whole number from 1 to 256")
    check_repeats(1, judge_mode)
    frame = _frame(data)
    column = _human_column(frame, human)
    for needed in ("input", "output"):
        if needed not in frame.columns:
            raise ConfigError(f"calibration data needs an {needed!r} column (the answer the humans scored)")
    chosen = as_scorer(scorer)
    if chosen.kind != "judge":
        raise ConfigError(f"scorer {chosen.name!r} is not an LLM judge: calibrate similarity or a rubric(...)")
    humans = pd.to_numeric(frame[column], errors="coerce")
    if humans.isna().all():
        raise ConfigError(f"column {column!r} holds no numbers: human scores must be 1-5")
    expected = frame["expected"] if "expected" in frame.columns else pd.Series([None] * len(frame))
    items = [ScoreInput(str(i), str(o), None if e is None or e != e else str(e), judge, mode=judge_mode)
             for i, o, e in zip(frame["input"], frame["output"], expected, strict=True)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        scores = list(pool.map(lambda it: contextvars.copy_context().run(chosen.score, it), items))
    judged = np.array([s.value for s in scores], dtype=float)
    failures = sum(s.failed for s in scores)
    table = frame.assign(human=humans, judge=judged, judge_raw=[s.raw for s in scores],
                         judge_rationale=[s.rationale for s in scores])
    both = table.dropna(subset=["human", "judge"])
    labels = list(range(int(chosen.low), int(chosen.high) + 1))
    confusion = pd.crosstab(both["human"].round().astype(int), both["judge"].round().astype(int),
                            rownames=["human"], colnames=["judge"]).reindex(index=labels, columns=labels, fill_value=0)
    result = Calibration(
        judge, chosen.name, len(both), spearman(humans, judged), weighted_kappa(humans, judged, labels=labels),
        float((both["human"].round() == both["judge"].round()).mean()) if len(both) else float("nan"),
        int(failures), confusion, table, None, judge_mode)
    result.run_id = _log(result, experiment, time.perf_counter() - started)
    return result


def _log(result: Calibration, experiment: str, elapsed_s: float) -> str | None:
    try:
        mlflow = ensure_mlflow()
        client = mlflow.MlflowClient(current_uri())
        experiment_id = backend(current_uri()).experiment_id(experiment)
        run = client.create_run(experiment_id, run_name=f"calibrate {result.judge}",
                                tags={"workbench.source": "workbench.calibrate"})
        run_id = run.info.run_id
        client.log_param(run_id, "judge", result.judge)
        client.log_param(run_id, "scorer", result.scorer)
        client.log_param(run_id, "judge_mode", result.judge_mode)
        for key, value in (("spearman", result.spearman), ("weighted_kappa", result.kappa),
                           ("exact_agreement", result.exact_agreement), ("n", result.n),
                           ("parse_failures", result.parse_failures), ("elapsed_s", elapsed_s)):
            if value == value:
                client.log_metric(run_id, key, float(value))
        client.set_tag(run_id, "workbench.verdict", result.verdict[:500])
        with tempfile.TemporaryDirectory(prefix="wb-cal-") as folder:
            result.confusion.to_csv(Path(folder) / "confusion.csv")
            result.table.to_json(Path(folder) / "calibration_table.json", orient="records", indent=1)
            client.log_artifacts(run_id, folder, "calibration")
        client.set_terminated(run_id, "FINISHED")
        return run_id
    except Exception as exc:  # the numbers are returned either way
        warnings.warn(f"calibration not logged to MLflow: {redact(str(exc))[:300]}", WorkbenchWarning, stacklevel=3)
        return None
