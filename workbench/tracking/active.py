"""The MLflow run that calls log under right now: a `with run(...)` block, else a run open across cells.

It lives on the tracking floor because runs own it; tracing (a higher floor) reads it to stamp each trace with
its run, and evaluations and fine-tunes set it with `use_run` for the work they do.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

__all__ = ["RunRef", "current_run", "set_session_run", "session_run", "use_run", "run_var"]


@dataclass
class RunRef:
    """The MLflow run calls log under, with call totals that are logged as metrics when it ends."""

    run_id: str
    experiment_id: str
    calls: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


run_var: ContextVar[RunRef | None] = ContextVar("workbench_run", default=None)
# `%llm run start` opens a run across cells; IPython may run each cell in a fresh context copy.
_session_run: RunRef | None = None


def current_run() -> RunRef | None:
    return run_var.get() or _session_run


def session_run() -> RunRef | None:
    return _session_run


def set_session_run(ref: RunRef | None) -> None:
    global _session_run
    _session_run = ref


@contextmanager
def use_run(ref: RunRef) -> Iterator[RunRef]:
    token = run_var.set(ref)
    try:
        yield ref
    finally:
        run_var.reset(token)
