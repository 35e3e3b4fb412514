"""Workbench: a Jupyter-native LLMOps workbench.

`import workbench` stays light: every public name is loaded on first use (module __getattr__), so
torch, litellm, mlflow and pandas load only when a call needs them.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from workbench.gateway.first_call import before_first_call
from workbench.providers.local.resolvers import set_adapter_resolver

# litellm fetches a price list and MLflow sends telemetry at import unless told otherwise.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

__version__ = "0.1.0"


def _finetune_adapters(name: str, version: str | None) -> str | os.PathLike[str] | None:
    """`local/<base>+adapter:<name>` asks workbench.finetune, which is loaded only when an adapter is first named.

    The providers floor may not import finetune (a higher floor); the face, above every floor, registers this.
    """
    from workbench.finetune.registry import resolve

    return resolve(name, version)


set_adapter_resolver(_finetune_adapters, name="finetune")


def _load_tracing() -> None:
    """Every call is traced: tracing adds its gateway observer when imported, which happens before the first call
    (not at `import workbench`, which stays light; the gateway, a lower floor, may not import tracing itself)."""
    import workbench.tracing  # noqa: F401


before_first_call(_load_tracing)

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
    "reload_endpoints": "workbench.gateway.endpoint_registry",
    "list_endpoints": "workbench.gateway.endpoint_registry",
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
    "span": "workbench.tracing.context",
    "traced": "workbench.tracing.context",
    "show_trace": "workbench.tracing.view",
    "TraceView": "workbench.tracing.view",
    "run": "workbench.tracking.runs",
    "runs": "workbench.tracking.runs",
    "prompt": "workbench.tracking.prompts",
    "prompts": "workbench.tracking.prompts",
    "register_prompt": "workbench.tracking.prompts",
    "golden": "workbench.datasets.golden",
    "GoldenDataset": "workbench.datasets.golden",
    "evaluate": "workbench.evals.runner",
    "EvalResult": "workbench.evals.result",
    "compare": "workbench.evals.compare",
    "gate": "workbench.evals.compare",
    "GateResult": "workbench.evals.compare",
    "plan": "workbench.evals.planning",
    "Plan": "workbench.evals.planning",
    "calibrate": "workbench.evals.calibrate",
    "feedback": "workbench.signals.collect",
    "Adapter": "workbench.finetune.adapter",
    "FineTuneJob": "workbench.finetune.job",
    "FineTuneError": "workbench.errors",
    "rollout": "workbench.traffic.routing",
    "rollout_report": "workbench.traffic.monitor",
    "Rollout": "workbench.traffic.routing",
    "RolloutReport": "workbench.traffic.monitor",
}

# public name -> module that IS it: workbench.scorers.regex(...), workbench.training_data.sft(),
# workbench.finetune.lora(...)
_MODULES = {
    "scorers": "workbench.evals.scoring",
    "training_data": "workbench.signals.exports",
    "finetune": "workbench.finetune",
}

__all__ = sorted([*_EXPORTS, *_MODULES]) + ["__version__"]

if TYPE_CHECKING:
    from workbench import finetune as finetune
    from workbench.config import configure, settings
    from workbench.datasets.golden import GoldenDataset, golden
    from workbench.errors import (
        BudgetExceeded,
        ConfigError,
        FineTuneError,
        MissingKeyError,
        ModelError,
        ProviderError,
        StoreError,
        StreamInterrupted,
        WorkbenchError,
    )
    from workbench.evals import scoring as scorers
    from workbench.evals.calibrate import calibrate
    from workbench.evals.compare import GateResult, compare, gate
    from workbench.evals.planning import Plan, plan
    from workbench.evals.result import EvalResult
    from workbench.evals.runner import evaluate
    from workbench.finetune.adapter import Adapter
    from workbench.finetune.job import FineTuneJob
    from workbench.gateway.accounting import budgets, calls, clear_cache, set_budget, spend
    from workbench.gateway.client import Stream, acomplete, complete, stream
    from workbench.gateway.endpoint_registry import list_endpoints, reload_endpoints
    from workbench.gateway.models import alias, route
    from workbench.gateway.prices import set_price
    from workbench.gateway.response import Attempt, Response
    from workbench.signals import exports as training_data
    from workbench.signals.collect import feedback
    from workbench.tracing.context import span, traced
    from workbench.tracing.view import TraceView, show_trace
    from workbench.tracking.prompts import prompt, prompts, register_prompt
    from workbench.tracking.runs import run, runs
    from workbench.traffic.monitor import RolloutReport, rollout_report
    from workbench.traffic.routing import Rollout, rollout


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        value: Any = importlib.import_module(_MODULES[name])
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    else:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext workbench`: the `%%llm` magic and every installed stage's magics (`%trace`, ...)."""
    from workbench.notebook import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """`%unload_ext workbench`: removes what load_ipython_extension added."""
    from workbench.notebook import unload

    unload(ipython)
