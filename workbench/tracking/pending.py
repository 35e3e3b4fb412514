"""Writes waiting in a higher floor that a read of MLflow must see first (the trace exporter's queue).

tracking/ must not import tracing/ (a higher floor); tracing registers its flush here when it is imported,
and a run that ends or a listing of runs calls `flush()` so its traces and metrics are in the store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["register_flush", "flush"]

_flushers: dict[str, Callable[[float], object]] = {}
_lock = threading.Lock()


def register_flush(name: str, flush_fn: Callable[[float], object]) -> None:
    """`flush_fn(timeout_s)` writes what `name` holds back; registering a name again replaces it."""
    with _lock:
        _flushers[name] = flush_fn


def flush(timeout_s: float = 30.0) -> None:
    """Write every registered pending queue now."""
    with _lock:
        found = list(_flushers.values())
    for flush_fn in found:
        flush_fn(timeout_s)
