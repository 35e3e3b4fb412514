"""Which cell, template and variables a call came from, readable by tracing while the call runs.

The gateway's observers run in the caller's thread and context, so a tracer can call `current()`
inside its observer to attach cell lineage to the trace without the gateway knowing about notebooks.
No IPython import here: tracing may import this module from anywhere.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["CellContext", "current", "in_cell"]


@dataclass(frozen=True)
class CellContext:
    execution_count: int | None  # the cell's [n]
    cell_id: str | None  # the frontend's cell id, when the frontend sends one
    template: str  # the cell body before interpolation
    variables: tuple[str, ...]  # namespace names interpolated into it
    line: str  # the flags line after %%llm
    chat: str | None = None  # --chat NAME
    notebook: str | None = None  # the notebook's path, when the kernel knows it
    prompt_name: str | None = None  # --prompt NAME: the registry entry this template was saved as
    prompt_version: int | None = None


_current: ContextVar[CellContext | None] = ContextVar("workbench_cell", default=None)


def current() -> CellContext | None:
    """The cell whose `%%llm` call is running now, or None outside one."""
    return _current.get()


@contextlib.contextmanager
def in_cell(context: CellContext) -> Iterator[CellContext]:
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)
