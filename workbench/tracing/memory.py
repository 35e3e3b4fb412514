"""Finished traces kept in memory (the last few hundred), so `%trace` right after a call needs no store read.

`finish()` is the one place a trace leaves the hot path: it is remembered here and queued for export.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from workbench.config import settings
from workbench.tracing import exporter
from workbench.tracing.records import TraceRecord

__all__ = ["finish", "recent", "last_trace_id", "remember", "forget_all", "KEEP"]

KEEP = 256  # traces kept for display; older ones are read back from MLflow
_lock = threading.Lock()
_recent: OrderedDict[str, TraceRecord] = OrderedDict()
_last: str | None = None


def remember(trace: TraceRecord) -> None:
    global _last
    with _lock:
        _recent[trace.trace_id] = trace
        _recent.move_to_end(trace.trace_id)
        while len(_recent) > KEEP:
            _recent.popitem(last=False)
        _last = trace.trace_id


def finish(trace: TraceRecord) -> None:
    """The root span ended: keep the trace for display and hand it to the background exporter."""
    if trace.finished:
        return
    trace.finished = True
    remember(trace)
    if settings().tracing == "on":  # "memory": kept for display only, MLflow never opened
        exporter.submit(trace)


def recent(trace_id: str) -> TraceRecord | None:
    with _lock:
        return _recent.get(trace_id)


def last_trace_id() -> str | None:
    """The id of the last trace that finished in this process (None before the first)."""
    return _last


def forget_all() -> None:
    global _last
    with _lock:
        _recent.clear()
        _last = None
