"""Tracing: every call traced, user spans, trace trees; runs and prompts re-exported from workbench.tracking.

Spans are recorded as plain records on the caller's thread and written to MLflow Tracing by a background
thread (see exporter), through workbench.tracking. Nothing here imports MLflow until a trace is exported or
a run/prompt is used.
"""

from __future__ import annotations

from workbench.tracing import exporter, memory
from workbench.tracing.context import Span, lineage, span, traced
from workbench.tracing.exporter import TracingWarning
from workbench.tracing.exporter import flush as _flush
from workbench.tracing.recorder import install
from workbench.tracing.view import TraceView, get_trace, last_trace_id, show_trace
from workbench.tracking import backend
from workbench.tracking.prompts import Prompt, prompt, prompts, register_prompt
from workbench.tracking.runs import Run, active_run, end_run, run, runs, start_run
from workbench.tracking.ui import start_ui

__all__ = [
    "Span", "span", "traced", "lineage", "TraceView", "show_trace", "get_trace", "last_trace_id", "flush",
    "TracingWarning", "install", "reset", "run", "runs", "start_run", "end_run", "active_run", "Run",
    "prompt", "prompts", "register_prompt", "Prompt", "start_ui",
]


def flush(timeout_s: float = 30.0) -> bool:
    """Write every finished trace to MLflow now (reads do this themselves); True when none is left waiting."""
    return _flush(timeout_s)


def reset() -> None:
    """Forget traces in memory, waiting exports, opened stores and warnings given (tests)."""
    exporter.reset()
    memory.forget_all()
    backend.reset()

