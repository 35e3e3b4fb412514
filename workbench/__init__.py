"""Workbench: a Jupyter-native LLMOps workbench.

`import workbench` stays light: every public name is loaded on first use (module __getattr__), so
torch, litellm, mlflow and pandas load only when a call needs them.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

# litellm fetches a price list and MLflow sends telemetry at import unless told otherwise.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "complete": "workbench.gateway.client",
    "acomplete": "workbench.gateway.client",
    "stream": "workbench.gateway.client",
    "Stream": "workbench.gateway.client",
    "Response": "workbench.gateway.response",
    "Attempt": "workbench.gateway.response",
    "alias": "workbench.gateway.models",
    "route": "workbench.gateway.models",
    "set_price": "workbench.gateway.prices",
    "spend": "workbench.gateway.accounting",
    "calls": "workbench.gateway.accounting",
    "set_budget": "workbench.gateway.accounting",
    "budgets": "workbench.gateway.accounting",
    "clear_cache": "workbench.gateway.accounting",
    "configure": "workbench.config",
    "settings": "workbench.config",
    "WorkbenchError": "workbench.errors",
    "ConfigError": "workbench.errors",
    "ModelError": "workbench.errors",
    "MissingKeyError": "workbench.errors",
    "ProviderError": "workbench.errors",
    "StreamInterrupted": "workbench.errors",
    "BudgetExceeded": "workbench.errors",
    "StoreError": "workbench.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]

if TYPE_CHECKING:
    from workbench.config import configure, settings
    from workbench.errors import (
        BudgetExceeded,
        ConfigError,
        MissingKeyError,
        ModelError,
        ProviderError,
        StoreError,
        StreamInterrupted,
        WorkbenchError,
    )
    from workbench.gateway.accounting import budgets, calls, clear_cache, set_budget, spend
    from workbench.gateway.client import Stream, acomplete, complete, stream
    from workbench.gateway.models import alias, route
    from workbench.gateway.prices import set_price
    from workbench.gateway.response import Attempt, Response


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
