"""MLflow runs: `with workbench.run("experiment", name=..., **params):` and `workbench.runs()`.

Inside a run, every trace carries the run's id (MLflow's `mlflow.sourceRun`) and goes to its experiment;
the run also becomes MLflow's active run in this thread, so evaluations and fine-tunes that log through
MLflow's fluent API land under it. When it ends, call totals are logged as metrics.
"""

from __future__ import annotations

import time
from contextvars import Token
from typing import TYPE_CHECKING, Any

from workbench.errors import ConfigError, StoreError
from workbench.identity import user
from workbench.secrets import redact
from workbench.tracking import active as current
from workbench.tracking import gate, pending
from workbench.tracking.backend import backend, current_uri, default_experiment_name, ensure_mlflow

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Run", "run", "runs", "start_run", "end_run", "active_run"]

_PARAM_MAX = 6000  # MLflow keeps param values up to 6000 characters


class Run:
    """An open MLflow run. Use as a context manager, or start()/end() across notebook cells."""

    def __init__(self, experiment: str | None = None, name: str | None = None, **params: Any) -> None:
        if experiment is not None and (not isinstance(experiment, str) or not experiment.strip()):
            raise ConfigError(f"experiment={experiment!r} must be a non-empty name, e.g. run('support-bot')")
        self.experiment = (experiment or default_experiment_name()).strip()
        self.name = name
        self.params = params
        self.ref: current.RunRef | None = None
        self._token: Token[Any] | None = None
        self._session = False

    @property
    def run_id(self) -> str | None:
        return self.ref.run_id if self.ref else None

    @property
    def experiment_id(self) -> str | None:
        return self.ref.experiment_id if self.ref else None

    def start(self, *, session: bool = False) -> Run:
        mlflow = ensure_mlflow()
        experiment_id = backend(current_uri()).experiment_id(self.experiment)
        try:
            active = mlflow.start_run(experiment_id=experiment_id, run_name=self.name,
                                      nested=mlflow.active_run() is not None,
                                      tags={"workbench.source": "workbench.run", "mlflow.user": user()})
            if self.params:
                mlflow.log_params({str(k): redact(str(v))[:_PARAM_MAX] for k, v in self.params.items()})
        except Exception as exc:
            raise StoreError(f"starting an MLflow run in {self.experiment!r} failed: {redact(str(exc))[:300]}") from exc
        self.ref = current.RunRef(active.info.run_id, experiment_id)
        self.name = active.info.run_name
        if session:
            self._session = True
            current.set_session_run(self.ref)
        else:
            self._token = current.run_var.set(self.ref)
        return self

    def end(self, status: str = "FINISHED") -> None:
        if self.ref is None:
            return
        mlflow = gate.mlflow()
        pending.flush()
        ref = self.ref
        metrics = {"calls": ref.calls, "call_errors": ref.errors, "prompt_tokens": ref.prompt_tokens,
                   "completion_tokens": ref.completion_tokens, "cost_usd": ref.cost_usd}
        if ref.calls - ref.errors > 0:
            metrics["mean_latency_ms"] = ref.latency_ms / (ref.calls - ref.errors)
        try:
            if ref.calls:
                mlflow.MlflowClient().log_batch(ref.run_id, metrics=[_metric(k, v) for k, v in metrics.items()])
            active = mlflow.active_run()
            if active is not None and active.info.run_id == ref.run_id:
                mlflow.end_run(status)
            else:  # ended from another thread or after a user's own end_run
                mlflow.MlflowClient().set_terminated(ref.run_id, status)
        finally:
            if self._token is not None:
                try:
                    current.run_var.reset(self._token)
                except ValueError:
                    current.run_var.set(None)
                self._token = None
            if self._session and current.session_run() is ref:
                current.set_session_run(None)
            self.ref = None

    def __enter__(self) -> Run:
        return self.start()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.end("FAILED" if exc_type is not None else "FINISHED")

    def __repr__(self) -> str:
        state = f"run_id={self.run_id}" if self.ref else "not started"
        return f"<workbench.Run {self.experiment!r} name={self.name!r} {state}>"


def _metric(key: str, value: float) -> Any:
    from mlflow.entities import Metric

    return Metric(key, float(value), int(time.time() * 1000), 0)


def run(experiment: str | None = None, name: str | None = None, **params: object) -> Run:
    """A context manager that opens an MLflow run in `experiment`; calls inside log under it."""
    return Run(experiment, name, **params)


_session_run: Run | None = None


def start_run(experiment: str | None = None, name: str | None = None, **params: Any) -> Run:
    """Open a run that stays open across cells until end_run() (what `%llm run start` does)."""
    global _session_run
    if _session_run is not None:
        raise ConfigError(f"a run is already open ({_session_run.name!r} in {_session_run.experiment!r}): "
                          "end it first with %llm run end (workbench.tracing.end_run())")
    _session_run = Run(experiment, name, **params).start(session=True)
    return _session_run


def end_run(status: str = "FINISHED") -> Run | None:
    """End the run start_run() opened; returns it (None when none was open)."""
    global _session_run
    found, _session_run = _session_run, None
    if found is not None:
        found.end(status)
    return found


def active_run() -> current.RunRef | None:
    """The run calls currently log under (a `with run(...)` block, else a start_run() run)."""
    return current.current_run()


def runs(experiment: str | None = None, max_results: int = 100) -> pd.DataFrame:
    """Recent runs as a DataFrame (newest first): all experiments, or one by name."""
    mlflow = ensure_mlflow()
    pending.flush()
    kwargs: dict[str, Any] = {"max_results": max_results, "order_by": ["attributes.start_time DESC"]}
    if experiment is None:
        kwargs["search_all_experiments"] = True
    else:
        kwargs["experiment_names"] = [experiment]
    try:
        frame = mlflow.search_runs(**kwargs)
    except Exception as exc:
        raise StoreError(f"listing runs failed: {redact(str(exc))[:300]}") from exc
    if "tags.mlflow.runName" in frame.columns:
        frame.insert(1, "name", frame.pop("tags.mlflow.runName"))
    return frame
