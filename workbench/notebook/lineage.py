"""Which cell, template and variables a call came from, readable by tracing while the call runs.

The cell is kept in tracing's one lineage variable (`tracing.context.cell_lineage`): the gateway's observers run
in the caller's thread and context, so the tracer stamps each trace with the cell's fields, and `current()`
returns the CellContext, without tracing knowing about notebooks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from workbench.tracing import context as tracing_context

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


def current() -> CellContext | None:
    """The cell whose `%%llm` call is running now, or None outside one."""
    found = tracing_context.current_cell()
    return found if isinstance(found, CellContext) else None


@contextlib.contextmanager
def in_cell(context: CellContext) -> Iterator[CellContext]:
    fields = {"execution_count": context.execution_count, "cell_id": context.cell_id, "template": context.template,
              "variables": list(context.variables), "notebook": context.notebook, "prompt_name": context.prompt_name,
              "prompt_version": context.prompt_version}
    with tracing_context.cell_lineage(context, fields):
        yield context
