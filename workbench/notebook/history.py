"""This session's `%%llm` calls: each Response with the cell it came from."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from workbench.gateway.response import Response
    from workbench.notebook.lineage import CellContext

__all__ = ["HistoryEntry", "Session"]


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
                "prompt": " ".join(entry.prompt.split())[:80],
                "at": pd.Timestamp(entry.created_at, unit="s"),
            })
        columns = ["cell", "model", "model_used", "status", "tokens", "cost_usd", "latency_ms", "cache_hit",
                   "fell_back",
                   "variables", "prompt", "cell_id", "at"]
        return pd.DataFrame(rows, columns=columns)
