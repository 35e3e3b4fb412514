"""The signals journal: `<home>/signals.sqlite`, one append-only row per signal, next to MLflow's assessments.

MLflow holds each signal as an assessment on the call's trace (the system of record, visible in its UI);
the journal keeps what training-data exports need (the prompt and answer texts) so an export never has to
search every trace. Appends are single INSERTs in WAL mode: two kernels writing at once lose nothing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.scrub import scrub_text, scrub_value
from workbench.sqlite_store import SqliteStore, per_home

__all__ = ["SignalRow", "journal", "Journal"]

_MIGRATIONS = [
    (
        "0001_signals",
        """
        CREATE TABLE IF NOT EXISTS signals (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            created_at REAL NOT NULL,
            trace_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            value TEXT,
            messages TEXT NOT NULL,
            output TEXT,
            model TEXT,
            other_trace_id TEXT,
            other_output TEXT,
            assessment_id TEXT,
            source TEXT
        );
        CREATE INDEX IF NOT EXISTS signals_trace ON signals (trace_id)
        """,
    ),
]
KINDS = ("thumbs", "stars", "correction", "comment", "preferred")


@dataclass
class SignalRow:
    trace_id: str
    kind: str  # thumbs | stars | correction | comment | preferred
    value: Any
    messages: list[dict[str, Any]]  # what was sent
    output: str | None  # what the model answered
    model: str | None = None
    other_trace_id: str | None = None  # preferred: the answer this one beat
    other_output: str | None = None
    assessment_id: str | None = None
    source: str | None = None
    created_at: float = 0.0


class Journal:
    def __init__(self, path: Path) -> None:
        self.db = SqliteStore(path, _MIGRATIONS)

    def add(self, rows: list[SignalRow]) -> None:
        now = time.time()
        conn = self.db.connect()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT INTO signals (created_at, trace_id, kind, value, messages, output, model, other_trace_id,"
                " other_output, assessment_id, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                # the journal feeds training exports meant for sharing: no key typed into a prompt is kept
                [(now, r.trace_id, r.kind, json.dumps(scrub_value(r.value)),
                  json.dumps(scrub_value(r.messages), ensure_ascii=False), scrub_text(r.output), r.model,
                  r.other_trace_id, scrub_text(r.other_output), r.assessment_id, r.source) for r in rows])
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def rows(self, kind: str | None = None) -> list[SignalRow]:
        query = ("SELECT trace_id, kind, value, messages, output, model, other_trace_id, other_output, assessment_id,"
                 " source, created_at FROM signals")
        params: tuple[Any, ...] = ()
        if kind is not None:
            query += " WHERE kind = ?"
            params = (kind,)
        found = []
        for r in self.db.execute(query + " ORDER BY id", params):
            found.append(SignalRow(r[0], r[1], json.loads(r[2]) if r[2] is not None else None, json.loads(r[3]),
                                   r[4], r[5], r[6], r[7], r[8], r[9], r[10]))
        return found

    def latest(self, trace_id: str, kind: str, source: str | None = None) -> SignalRow | None:
        """The last signal of a kind on a trace (by that source, when given): what a new thumbs overrides."""
        query = ("SELECT trace_id, kind, value, messages, output, model, other_trace_id, other_output, assessment_id,"
                 " source, created_at FROM signals WHERE trace_id = ? AND kind = ?")
        params: tuple[Any, ...] = (trace_id, kind)
        if source is not None:
            query += " AND source = ?"
            params += (source,)
        r = self.db.execute(query + " ORDER BY id DESC LIMIT 1", params).fetchone()
        if r is None:
            return None
        return SignalRow(r[0], r[1], json.loads(r[2]) if r[2] is not None else None, json.loads(r[3]), r[4], r[5],
                         r[6], r[7], r[8], r[9], r[10])

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM signals").fetchone()[0])


def journal() -> Journal:
    """The signals journal of the current home folder."""
    return per_home("signals.sqlite", Journal)
