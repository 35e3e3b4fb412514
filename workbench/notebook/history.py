"""This session's `%%llm` calls: each Response with the cell it came from."""

from __future__ import annotations

import functools
import html
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.verbatim import NO_MATH

if TYPE_CHECKING:
    import pandas as pd

    from workbench.gateway.response import Response
    from workbench.notebook.lineage import CellContext

__all__ = ["HistoryEntry", "Session", "history_table", "history_html"]

PROMPT_SHOWN = 60  # characters of a prompt the table shows; the whole prompt is its hover text


@dataclass
class HistoryEntry:
    cell: CellContext
    model: str  # as asked
    prompt: str  # after interpolation
    format: str
    response: Response | None = None
    error: str | None = None  # "Type: message" when the call failed
    created_at: float = field(default_factory=time.time)


@dataclass
class Session:
    """Per-shell state of the extension: history, named chats, the cell now running."""

    entries: list[HistoryEntry] = field(default_factory=list)
    chats: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    cell_id: str | None = None  # set by the pre_run_cell hook
    store_history: bool = True  # False for silent runs, which get no [n]
    hook: Any = field(default=None, repr=False)  # that hook, so unload can remove it

    def add(self, entry: HistoryEntry) -> None:
        self.entries.append(entry)

    def frame(self, last: int | None = None) -> pd.DataFrame:
        import pandas as pd

        entries = self.entries[-last:] if last else self.entries
        rows = []
        for entry in entries:
            response = entry.response
            rows.append({
                "cell": entry.cell.execution_count,
                "cell_id": entry.cell.cell_id,
                "model": entry.model,
                "model_used": response.model_used if response else None,
                "status": "ok" if entry.error is None else entry.error.split(":", 1)[0],
                "tokens": response.total_tokens if response else 0,
                "cost_usd": response.cost_usd if response else 0.0,
                "latency_ms": round(response.latency_ms, 1) if response else None,
                "cache_hit": bool(response and response.cache_hit),
                "fell_back": bool(response and response.fell_back),
                "variables": ", ".join(entry.cell.variables),
                "prompt": " ".join(entry.prompt.split()),
                "at": pd.Timestamp(entry.created_at, unit="s"),
            })
        columns = ["cell", "model", "model_used", "status", "tokens", "cost_usd", "latency_ms", "cache_hit",
                   "fell_back",
                   "variables", "prompt", "cell_id", "at"]
        return pd.DataFrame(rows, columns=columns)


# the columns the notebook view shows, narrowest first; the DataFrame keeps every column
_SHOWN = ("cell", "model", "status", "tokens", "cost_usd", "latency_ms", "cache_hit", "prompt")


def history_html(frame: pd.DataFrame) -> str:
    """The history as a table that fits the notebook's width: a few columns, each prompt cut to one line with
    the whole prompt on hover. Model and user text are escaped, and kept away from MathJax."""
    head = "".join(f"<th style='text-align:left'>{html.escape(name)}</th>" for name in _SHOWN)
    rows = []
    for _, row in frame.iterrows():
        cells = []
        for name in _SHOWN:
            value = row.get(name)
            text = "" if value is None or value != value else str(value)  # value != value: NaN
            if name == "prompt":
                shown = text if len(text) <= PROMPT_SHOWN else text[: PROMPT_SHOWN - 1] + "…"
                cells.append(f"<td title='{html.escape(text, quote=True)}' style='white-space:nowrap;"
                             f"overflow:hidden;text-overflow:ellipsis;max-width:0;width:100%'>{html.escape(shown)}</td>")
            else:
                cells.append(f"<td style='white-space:nowrap'>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<div class='{NO_MATH}' style='max-width:100%;overflow-x:auto'><table style='width:100%'>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"<div>{len(frame)} call(s); every column is in the DataFrame (e.g. df = %llm history)</div></div>")


@functools.cache
def _table_class() -> type:
    import pandas as pd

    class HistoryTable(pd.DataFrame):
        """A DataFrame that shows itself as history_html in a notebook; what is derived from it is plain."""

        @property
        def _constructor(self) -> type:
            return pd.DataFrame

        def _repr_html_(self) -> str:
            return history_html(self)

    return HistoryTable


def history_table(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` as a DataFrame that renders to fit the notebook (`%llm history`)."""
    table: pd.DataFrame = _table_class()(frame)
    return table
