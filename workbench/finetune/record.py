"""A fine-tune's MLflow run, written by the parent process only (the child never opens MLflow).

The run is made with MlflowClient and explicit ids (MLflow's fluent active run is thread-local, and a `wait=False`
job logs from its own thread). It holds the params, the training data as a run input named by its digest (rows as
the `data/` artifact), per-step loss, the adapter folder as the `adapter/` artifact (adapter weights only: the base is
named, never copied), and the registered model version under the adapter's name.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import StoreError, WorkbenchWarning
from workbench.finetune.registry import ADAPTER_ARTIFACT, client, forget_latest
from workbench.secrets import redact
from workbench.tracing import context
from workbench.tracking.backend import backend, current_uri, default_experiment_name

if TYPE_CHECKING:
    from workbench.finetune.options import TrainData, TrainOptions

__all__ = ["FineTuneRun", "FineTuneWarning"]

_PARAM_MAX = 6000


class FineTuneWarning(WorkbenchWarning):
    """The fine-tune ran but could not be (fully) recorded in MLflow."""


class FineTuneRun:
    def __init__(self, options: TrainOptions, data: TrainData, experiment: str | None) -> None:
        self.options, self.data, self.experiment = options, data, experiment
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self._client: Any = None
        self._pending: list[Any] = []
        self._ended = False

    def start(self, data_file: Path, extra_params: dict[str, Any], tags: dict[str, str]) -> str:
        """Create the run with its params and data input. Raises StoreError when MLflow is unusable."""
        try:
            self._client = client()
            from mlflow.entities import Param

            self.experiment_id = backend(current_uri()).experiment_id(self.experiment or default_experiment_name())
            run_tags = {"workbench.source": f"workbench.finetune.{'lora' if self.options.method == 'sft' else 'dpo'}",
                        "mlflow.runName": f"{self.options.method} {self.options.name}", **tags}
            parent = context.current_run()
            if parent is not None:  # inside `with workbench.run(...)`: nest under it
                run_tags["mlflow.parentRunId"] = parent.run_id
            created = self._client.create_run(self.experiment_id, tags=run_tags,
                                              run_name=run_tags["mlflow.runName"])
            self.run_id = created.info.run_id
            params = {**self.options.params(), "base": f"local/{self.options.base}", "rows": len(self.data.rows),
                      "data_digest": self.data.digest, "data_source": self.data.source, **extra_params}
            self._client.log_batch(self.run_id, params=[Param(k, redact(str(v))[:_PARAM_MAX])
                                                        for k, v in params.items() if v is not None])
            self._client.log_artifact(self.run_id, str(data_file), "data")
            self._log_input(data_file.name)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"starting the fine-tune's MLflow run failed: {redact(str(exc))[:300]}") from exc
        return self.run_id

    def _log_input(self, file_name: str) -> None:
        from mlflow.entities import Dataset, DatasetInput, InputTag

        source = json.dumps({"uri": f"runs:/{self.run_id}/data/{file_name}"})
        schema = "messages" if self.data.kind == "sft" else "prompt, chosen, rejected"
        entity = Dataset(f"{self.options.name}-{self.data.kind}", self.data.digest, "workbench", source,
                         schema=json.dumps({"columns": schema}), profile=json.dumps({"num_rows": len(self.data.rows)}))
        self._client.log_inputs(self.run_id, datasets=[DatasetInput(entity, tags=[InputTag("mlflow.data.context",
                                                                                            "training")])])

    def metric(self, key: str, value: float, step: int = 0) -> None:
        from mlflow.entities import Metric

        self._pending.append(Metric(key, float(value), int(time.time() * 1000), int(step)))

    def flush(self) -> None:
        """Write the metrics gathered so far (one batch)."""
        if not self._pending or self.run_id is None:
            return
        batch, self._pending = self._pending[:1000], self._pending[1000:]
        try:
            self._client.log_batch(self.run_id, metrics=batch)
        except Exception as exc:  # a metric lost must not stop training
            warnings.warn(f"fine-tune metrics not logged: {redact(str(exc))[:200]}", FineTuneWarning, stacklevel=2)
        if self._pending:
            self.flush()

    def tags(self, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self._client.set_tag(self.run_id, key, redact(str(value))[:5000])

    def log_adapter(self, folder: Path) -> str:
        """The adapter folder as the run's `adapter/` artifact; its URI."""
        self._client.log_artifacts(self.run_id, str(folder), ADAPTER_ARTIFACT)
        run = self._client.get_run(self.run_id)
        return f"{run.info.artifact_uri.rstrip('/')}/{ADAPTER_ARTIFACT}"

    def register(self, source: str) -> str:
        """A new version of the registered model named after the adapter; its version number."""
        from mlflow.exceptions import MlflowException

        name = self.options.name
        try:
            self._client.create_registered_model(name, description=f"LoRA adapters on local/{self.options.base} "
                                                                   "(workbench.finetune)")
        except MlflowException as exc:
            if "already exists" not in str(exc).lower() and "RESOURCE_ALREADY_EXISTS" not in str(exc):
                raise
        version = self._client.create_model_version(
            name, source=source, run_id=self.run_id,
            tags={"workbench.kind": "adapter", "workbench.base": f"local/{self.options.base}",
                  "workbench.method": self.options.method})
        model = f"local/{self.options.base}+adapter:{name}@{version.version}"
        self._client.set_model_version_tag(name, str(version.version), "workbench.model", model)
        forget_latest(name)
        return str(version.version)

    def end(self, status: str) -> None:
        """Mark the run FINISHED, KILLED or FAILED (the first call wins)."""
        if self.run_id is None or self._ended:
            return
        self._ended = True
        self.flush()
        try:
            self._client.set_terminated(self.run_id, status)
        except Exception as exc:
            warnings.warn(f"the fine-tune run {self.run_id} could not be marked {status}: {redact(str(exc))[:200]}",
                          FineTuneWarning, stacklevel=2)
