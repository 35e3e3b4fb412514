"""How a hint spells its fix: in Python (`fallbacks=[...]`) or in the `%%llm` cell's own flags (`--fallback`).

The gateway writes the hints; only the notebook floor knows the user is typing a cell. So the cell marks its
calls with `cell_syntax()` (a context variable: each thread and task keeps its own), and the gateway asks here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["cell_syntax", "fallback_hint"]

_IN_CELL: ContextVar[bool] = ContextVar("workbench_hints_in_cell", default=False)


@contextmanager
def cell_syntax() -> Iterator[None]:
    """Hints raised inside this block are written in `%%llm` flags."""
    token = _IN_CELL.set(True)
    try:
        yield
    finally:
        _IN_CELL.reset(token)


def fallback_hint(model: str = "local/smollm2") -> str:
    """How to add a fallback where the user is: `--fallback local/smollm2` in a cell, else the keyword."""
    return f"--fallback {model}" if _IN_CELL.get() else f"fallbacks=['{model}']"
