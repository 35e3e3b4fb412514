"""An evaluation's MLflow run: created up front (so every call's trace links to it), finished with params,
metrics, the table, the summary, the plot and the dataset, and the status FINISHED, KILLED or FAILED.

The run is made with MlflowClient and explicit ids, not MLflow's fluent active run, which is thread-local:
worker threads make the calls. Calls see the run through workbench's run context (copied into each worker).
"""

from __future__ import annotations

import atexit
import json
import re
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.datasets.files import write_jsonl
from workbench.datasets.versions import dataset_input
from workbench.errors import StoreError, WorkbenchWarning
from workbench.evals.plots import figure_png, plot_result
from workbench.evals.result import META_ARTIFACT, TABLE_ARTIFACT, EvalResult
from workbench.secrets import redact
from workbench.tracing import context
from workbench.tracking import pending
from workbench.tracking.backend import backend, current_uri, default_experiment_name, ensure_mlflow

if TYPE_CHECKING:
    from workbench.datasets.golden import GoldenDataset
    from workbench.datasets.rows import GoldenRow
    from workbench.tracing.context import RunRef

__all__ = ["EvalRun", "EvalWarning", "metric_key", "flush_records"]

_PARAM_MAX = 6000
# Runs being finished in the background: metrics, artifacts and the plot are written after evaluate()
# returns (off the hot path, like traces); readers of runs call flush_records() first.
_pending: set[threading.Thread] = set()
_pending_lock = threading.Lock()
_undelivered: list[str] = []


def flush_records(timeout_s: float = 60.0) -> None:
    """Wait until every evaluation run of this process is fully written to MLflow; show deferred warnings."""
    with _pending_lock:
        threads = list(_pending)
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    while _undelivered:
        warnings.warn(_undelivered.pop(0), EvalWarning, stacklevel=2)


atexit.register(flush_records, 30.0)
pending.register_flush("evaluation runs", flush_records)  # reads of MLflow (EvalResult.from_run, runs()) wait for them


class EvalWarning(WorkbenchWarning):
    """The evaluation ran but could not be (fully) recorded in MLflow."""


def metric_key(*parts: str) -> str:
    """MLflow allows letters, digits, _ - . space : / in metric names; model strings may hold ? and =."""
    return "/".join(re.sub(r"[^A-Za-z0-9_\-. :/]", "_", part) for part in parts if part)


class EvalRun:
    def __init__(self, experiment: str | None, name: str, params: dict[str, Any]) -> None:
        self.experiment, self.name, self.params = experiment, name, params
        self.ref: RunRef | None = None
        self._client: Any = None

    def start(self) -> RunRef | None:
        """Create the run; None (with a warning) when the store cannot be used: the evaluation still runs."""
        try:
            mlflow = ensure_mlflow()  # first: it serializes MLflow's import with the trace export thread's
            from mlflow.entities import Param

            experiment_id = backend(current_uri()).experiment_id(self.experiment or default_experiment_name())
            self._client = mlflow.MlflowClient(current_uri())
            tags = {"workbench.source": "workbench.evaluate", "mlflow.runName": self.name}
            parent = context.current_run()
            if parent is not None:  # inside `with workbench.run(...)`: nest under it
                tags["mlflow.parentRunId"] = parent.run_id
            created = self._client.create_run(experiment_id, run_name=self.name, tags=tags)
            params = [Param(k, redact(str(v))[:_PARAM_MAX]) for k, v in self.params.items() if v is not None]
            self._client.log_batch(created.info.run_id, params=params)
            self.ref = context.RunRef(created.info.run_id, experiment_id)
        except (StoreError, Exception) as exc:
            warnings.warn(f"the evaluation runs without an MLflow run: {redact(str(exc))[:300]}", EvalWarning,
                          stacklevel=4)
            self.ref = None
        return self.ref

    def finish(self, result: EvalResult, dataset: GoldenDataset, rows: list[GoldenRow], mlflow_dataset_id: str | None,
               status: str, *, background: bool = True) -> None:
        """Write metrics, artifacts and the dataset link, then the status; in a background thread by default."""
        if self.ref is None:
            return
        if not background:
            self._finish(result, dataset, rows, mlflow_dataset_id, status)
            return
        thread = threading.Thread(target=self._finish_tracked, args=(result, dataset, rows, mlflow_dataset_id, status),
                                  name="workbench-eval-record", daemon=True)
        with _pending_lock:
            _pending.add(thread)
        thread.start()

    def _finish_tracked(self, *args: Any) -> None:
        try:
            self._finish(*args)
        finally:
            with _pending_lock:
                _pending.discard(threading.current_thread())

    def _finish(self, result: EvalResult, dataset: GoldenDataset, rows: list[GoldenRow], mlflow_dataset_id: str | None,
                status: str) -> None:
        if self.ref is None:  # start() could not make the run: nothing to finish
            return
        run_id = self.ref.run_id
        try:
            self._client.log_batch(run_id, metrics=self._metrics(result))
            with tempfile.TemporaryDirectory(prefix="wb-eval-") as folder:
                self._write_artifacts(Path(folder), result, dataset.name, rows)
                self._client.log_artifacts(run_id, folder)
            self._log_dataset(run_id, result, dataset, mlflow_dataset_id)
        except Exception as exc:  # shown in the caller's thread by the next flush_records()
            _undelivered.append(f"evaluation run {run_id} is incomplete in MLflow: {redact(str(exc))[:300]}")
        finally:
            try:
                self._client.set_terminated(run_id, status)
            except Exception as exc:  # the run stays RUNNING in the UI; the result is still returned, and we say so
                _undelivered.append(f"evaluation run {run_id} stays RUNNING in MLflow: {redact(str(exc))[:300]}")

    def fail(self) -> None:
        if self.ref is not None:
            try:
                self._client.set_terminated(self.ref.run_id, "FAILED")
            except Exception as exc:  # the evaluation's own error is the one raised; this one is said alongside
                warnings.warn(f"evaluation run {self.ref.run_id} stays RUNNING in MLflow: {redact(str(exc))[:300]}",
                              EvalWarning, stacklevel=3)

    @staticmethod
    def _metrics(result: EvalResult) -> list[Any]:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        several = len(result.models) > 1
        metrics: dict[str, float] = {"rows": float(len(result.table)), "parse_failures": float(result.parse_failures)}
        for row in result.summary.itertuples():
            prefix = (row.model,) if several else ()
            for stat in ("mean", "ci_low", "ci_high", "n", "parse_failures", "mde"):
                value = float(getattr(row, stat))
                if value == value:  # MLflow stores NaN, but the UI charts choke on it
                    metrics[metric_key(*prefix, row.scorer, stat)] = value
        if result.judge_repeats > 1:  # the judge's self-agreement and noise, per judged scorer
            for row in result.judge_noise.itertuples():
                prefix = (row.model,) if several else ()
                for stat, value in (("judge_agreement", row.agreement), ("judge_within_row_sd", row.within_row_sd),
                                    ("judge_noise_on_mean", row.noise_on_mean)):
                    if value == value:
                        metrics[metric_key(*prefix, row.scorer, stat)] = float(value)
        table = result.table
        for model in result.models:
            part = table[table["model"] == model]
            prefix = (model,) if several else ()
            metrics[metric_key(*prefix, "cost_usd")] = float(part["cost_usd"].fillna(0).sum())
            metrics[metric_key(*prefix, "errors")] = float(part["error"].notna().sum())
            latency = part["latency_ms"].dropna()
            if not latency.empty:
                metrics[metric_key(*prefix, "latency_ms", "mean")] = float(latency.mean())
        return [Metric(k, v, now, 0) for k, v in metrics.items()]

    @staticmethod
    def _write_artifacts(folder: Path, result: EvalResult, name: str, rows: list[GoldenRow]) -> None:
        (folder / "eval").mkdir()
        result.table.to_json(folder / TABLE_ARTIFACT, orient="records", force_ascii=False, indent=1)
        (folder / META_ARTIFACT).write_text(json.dumps(result.meta(), indent=1), encoding="utf-8")
        result.summary.to_csv(folder / "eval" / "summary.csv", index=False)
        try:  # a plot is a nicety; the numbers are logged above, so a failed plot is said, not raised
            (folder / "eval" / "scores.png").write_bytes(figure_png(plot_result(result, pyplot=False)))
        except (ValueError, TypeError, OSError, RuntimeError) as exc:
            warnings.warn(f"evaluation {name!r}: eval/scores.png was not saved ({type(exc).__name__}: {exc}); "
                          "the table, summary and metrics were", EvalWarning, stacklevel=2)
        write_jsonl(rows, folder / "dataset" / f"{name}.jsonl")

    def _log_dataset(self, run_id: str, result: EvalResult, dataset: GoldenDataset,
                     mlflow_dataset_id: str | None) -> None:
        """The dataset as the run's input: the MLflow evaluation dataset of that version, else a pandas dataset."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        if mlflow_dataset_id:
            entity = dataset_input(mlflow_dataset_id)
        else:  # an in-memory dataset: named by its digest; its rows are the run's dataset/ artifact
            source = json.dumps({"uri": f"runs:/{run_id}/dataset/{dataset.name}.jsonl"})
            entity = Dataset(dataset.name, result.digest[:12], "workbench", source,
                             profile=json.dumps({"num_rows": len(result.table) // max(1, len(result.models))}))
        tag = InputTag("mlflow.data.context", "evaluation")
        self._client.log_inputs(run_id, datasets=[DatasetInput(entity, tags=[tag])])
