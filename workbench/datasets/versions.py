"""Each saved state of a golden dataset as an MLflow evaluation dataset (`mlflow.genai.datasets`).

MLflow's own dataset versions exist only on Databricks, so each saved state is its own MLflow dataset named
`<name>.v<n>`, tagged with the golden name, version number and content digest. A store that cannot hold it
(unreachable server) leaves the local version in place, with a warning.
"""

from __future__ import annotations

import warnings
from typing import Any

from workbench.datasets.rows import GoldenRow
from workbench.errors import StoreError, WorkbenchWarning
from workbench.secrets import redact
from workbench.tracking.backend import backend, current_uri, ensure_mlflow

__all__ = ["push_version", "mlflow_records", "GoldenWarning", "EXPERIMENT"]

EXPERIMENT = "golden-datasets"


class GoldenWarning(WorkbenchWarning):
    """A golden dataset was saved locally but not in MLflow."""


def mlflow_records(rows: list[GoldenRow]) -> list[dict[str, Any]]:
    """MLflow's record shape: inputs / expectations / tags (`expected_response` is MLflow's name for it)."""
    records = []
    for row in rows:
        inputs = {"question": row.input} if isinstance(row.input, str) else {"messages": row.input}
        record: dict[str, Any] = {
            "inputs": inputs,
            "tags": {"row_id": row.row_id, "verified": str(row.verified).lower(), "tags": ",".join(row.tags),
                     "source": row.source or ""},
        }
        if row.expected is not None:
            record["expectations"] = {"expected_response": row.expected}
        records.append(record)
    return records


def push_version(name: str, version: int, digest: str, rows: list[GoldenRow]) -> str | None:
    """Create the MLflow evaluation dataset for one version; its id, or None (with a warning) when MLflow fails."""
    try:
        ensure_mlflow()
        experiment_id = backend(current_uri()).experiment_id(EXPERIMENT)
        from mlflow.genai.datasets import create_dataset

        dataset = create_dataset(
            name=f"{name}.v{version}",
            experiment_id=[experiment_id],
            tags={"workbench.golden": name, "workbench.version": str(version), "workbench.digest": digest},
        )
        if rows:
            dataset.merge_records(mlflow_records(rows))
        return dataset.dataset_id
    except (StoreError, Exception) as exc:  # the local version stands; MLflow is told next save
        warnings.warn(f"golden dataset {name!r} v{version} is saved locally but not in MLflow: "
                      f"{redact(str(exc))[:200]}", GoldenWarning, stacklevel=3)
        return None


def dataset_input(dataset_id: str) -> Any:
    """The MLflow dataset entity, for logging as a run's input (the run page links it)."""
    from mlflow.genai.datasets import get_dataset

    return get_dataset(dataset_id=dataset_id)._to_mlflow_entity()
