"""The one door through which MLflow is first imported, under a lock.

MLflow's first import takes seconds and was raced between the trace export thread and the main thread
(evaluate, feedback, prompt, run): a thread that found the module half imported failed with "partially
initialized module 'mlflow'" and tracing went off for the session. Every first use of MLflow in the package
calls `mlflow()` here; the submodules the package uses are imported under the same lock, so later
`from mlflow.entities import ...` lines find them loaded.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from types import ModuleType

__all__ = ["mlflow", "quiet", "is_not_found", "NOT_FOUND_CODE"]

# MlflowException.error_code when a run, experiment, prompt, model version or dataset does not exist
NOT_FOUND_CODE = "RESOURCE_DOES_NOT_EXIST"
# MLflow sets its loggers' levels when imported; these would print INFO lines into cells.
_QUIET = ("mlflow", "alembic", "sqlalchemy", "urllib3.connectionpool", "opentelemetry")
_SUBMODULES = ("mlflow.entities", "mlflow.exceptions", "mlflow.tracing", "mlflow.tracing.client",
               "mlflow.tracing.constant", "mlflow.tracking", "mlflow.artifacts")
_lock = threading.Lock()
_module: ModuleType | None = None


def mlflow() -> ModuleType:
    """The mlflow module, imported once (with its submodules we use) while other threads wait."""
    global _module
    if _module is not None:
        return _module
    with _lock:
        if _module is None:
            os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
            module = importlib.import_module("mlflow")
            for name in _SUBMODULES:
                importlib.import_module(name)
            quiet()
            _module = module
    return _module


def quiet() -> None:
    """Set MLflow's and its libraries' loggers to errors only (again after a store opens: MLflow resets some)."""
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.ERROR)


def is_not_found(exc: BaseException) -> bool:
    """Whether MLflow raised `exc` because the thing asked for does not exist (by its error code, not its text)."""
    return getattr(exc, "error_code", None) == NOT_FOUND_CODE
