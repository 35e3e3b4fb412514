"""Tracing and MLflow tracking: every call traced, user spans, trace trees, runs and prompts.

Spans are recorded as plain records on the caller's thread and written to MLflow Tracing by a background
thread (see exporter). Nothing here imports MLflow until a trace is exported or a run/prompt is used.
"""

from __future__ import annotations

from typing import Any

from workbench.tracing.context import Span, lineage, span, traced
from workbench.tracing.exporter import TracingWarning
from workbench.tracing.exporter import flush as _flush
from workbench.tracing.recorder import install
from workbench.tracing.view import TraceView, get_trace, last_trace_id, show_trace

__all__ = [
    "Span", "span", "traced", "lineage", "TraceView", "show_trace", "get_trace", "last_trace_id", "flush",
    "TracingWarning", "install", "reset", "run", "runs", "start_run", "end_run", "active_run", "Run",
    "prompt", "prompts", "register_prompt", "Prompt", "start_ui",
]

_LAZY = {
    "run": "workbench.tracing.tracking", "runs": "workbench.tracing.tracking", "Run": "workbench.tracing.tracking",
    "start_run": "workbench.tracing.tracking", "end_run": "workbench.tracing.tracking",
    "active_run": "workbench.tracing.tracking", "prompt": "workbench.tracing.registry",
    "prompts": "workbench.tracing.registry", "register_prompt": "workbench.tracing.registry",
    "Prompt": "workbench.tracing.registry", "start_ui": "workbench.tracing.ui",
}


def flush(timeout_s: float = 30.0) -> bool:
    """Write every finished trace to MLflow now (reads do this themselves); True when none is left waiting."""
    return _flush(timeout_s)


def reset() -> None:
    """Forget traces in memory, waiting exports, opened stores and warnings given (tests)."""
    from workbench.tracing import backend, exporter, memory

    exporter.reset()
    memory.forget_all()
    backend.reset()


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'workbench.tracing' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
