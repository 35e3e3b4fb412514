"""The cost ledger: one row per call (cache hits at cost 0), with its tags; spend and budgets.

Rows go to a sqlite file under the home folder (WAL, busy timeout), so two kernels can write at once.
"""

from __future__ import annotations

import atexit
import json
import math
import queue
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import ConfigError, StoreError
from workbench.secrets import redact
from workbench.sqlite_store import SqliteStore

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Ledger", "LedgerRow", "Budget"]

_MIGRATIONS = [
    (
        "0001_create_calls",
        """
        CREATE TABLE IF NOT EXISTS calls (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            created_at REAL NOT NULL,
            model TEXT NOT NULL,
            model_used TEXT,
            status TEXT NOT NULL,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL,
            latency_ms REAL,
            cache_hit INTEGER NOT NULL DEFAULT 0,
            failed_attempts INTEGER NOT NULL DEFAULT 0,
            tags TEXT NOT NULL DEFAULT '{}',
            trace_id TEXT
        );
        CREATE INDEX IF NOT EXISTS calls_created ON calls (created_at)
        """,
    ),
    (
        "0002_create_budgets",
        """
        CREATE TABLE IF NOT EXISTS budgets (
            scope TEXT PRIMARY KEY,
            tag_key TEXT,
            tag_value TEXT,
            usd REAL NOT NULL,
            since REAL NOT NULL
        )
        """,
    ),
]
_TAG_KEY = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class LedgerRow:
    model: str
    model_used: str | None
    status: str  # "ok", "error", "interrupted" or "refused" (over budget: nothing was sent)
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    latency_ms: float
    cache_hit: bool
    failed_attempts: int
    tags: dict[str, str]
    trace_id: str | None = None


@dataclass(frozen=True)
class Budget:
    usd: float
    tag: tuple[str, str] | None  # None: every call
    since: float

    @property
    def scope(self) -> str:
        return "global" if self.tag is None else f"{self.tag[0]}={self.tag[1]}"


def _check_tag_key(key: object) -> str:
    if not isinstance(key, str) or not _TAG_KEY.match(key):
        raise ConfigError(f"tag key {key!r} must be letters, digits, '_', '-' or '.', e.g. 'project'")
    return key


class Ledger:
    """Rows are queued by the caller and written in batches by a background thread (a sqlite write
    costs about as much as a whole mocked litellm call); every read flushes first, and so does exit."""

    def __init__(self, path: Path) -> None:
        self.store = SqliteStore(path, _MIGRATIONS)
        self._pending: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._writer: threading.Thread | None = None
        self._closed = False
        atexit.register(self.flush)

    def close(self) -> None:
        """Write what is queued and stop the writer thread."""
        self.flush()
        self._closed = True
        self._wake.set()
        atexit.unregister(self.flush)

    @property
    def path(self) -> Path:
        return self.store.path

    def record(self, row: LedgerRow) -> None:
        self._pending.put((
            time.time(), row.model, row.model_used, row.status, row.prompt_tokens, row.completion_tokens,
            row.cost_usd, row.latency_ms, int(row.cache_hit), row.failed_attempts,
            json.dumps({k: redact(v) for k, v in row.tags.items()}, sort_keys=True), row.trace_id,
        ))
        if self._writer is None:
            self._start_writer()
        self._wake.set()

    def _start_writer(self) -> None:
        with self._write_lock:
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_forever, name="workbench-ledger", daemon=True)
                self._writer.start()

    def _write_forever(self) -> None:
        while not self._closed:
            self._wake.wait()
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # a full disk must not kill the writer; the next flush retries
                time.sleep(0.5)

    def flush(self) -> None:
        """Write every queued row now (one transaction)."""
        with self._write_lock:
            rows = []
            while True:
                try:
                    rows.append(self._pending.get_nowait())
                except queue.Empty:
                    break
            if not rows:
                return
            conn = self.store.connect()
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(
                    "INSERT INTO calls (created_at, model, model_used, status, prompt_tokens, completion_tokens,"
                    " cost_usd, latency_ms, cache_hit, failed_attempts, tags, trace_id)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    rows,
                )
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                for row in rows:  # keep them for the next try: a ledger loses nothing
                    self._pending.put(row)
                raise StoreError(f"cannot write the ledger {self.path}: {exc}; check the disk and the folder") from exc

    def count(self) -> int:
        self.flush()
        return int(self.store.execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def spent_usd(self, tag: tuple[str, str] | None = None, since: float = 0.0) -> float:
        self.flush()
        sql = "SELECT COALESCE(SUM(cost_usd), 0) FROM calls WHERE created_at >= ?"
        params: list[Any] = [since]
        if tag is not None:
            sql += " AND json_extract(tags, '$.' || ?) = ?"
            params += [tag[0], tag[1]]
        return float(self.store.execute(sql, params).fetchone()[0])

    def calls(self, limit: int | None = None) -> pd.DataFrame:
        import pandas as pd

        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ConfigError(f"limit={limit!r} must be a whole number >= 0 (or None for every call), e.g. calls(20)")
        self.flush()
        sql = "SELECT * FROM calls ORDER BY id DESC" + (f" LIMIT {int(limit)}" if limit else "")  # noqa: S608 - an int
        cursor = self.store.execute(sql)
        columns = [c[0] for c in cursor.description]
        frame = pd.DataFrame(cursor.fetchall(), columns=columns)
        frame["tags"] = frame["tags"].map(json.loads)
        frame["cache_hit"] = frame["cache_hit"].astype(bool)
        frame["created_at"] = pd.to_datetime(frame["created_at"], unit="s")
        return frame

    def spend(self, by: str = "model") -> pd.DataFrame:
        """Calls, tokens and USD grouped by `model` (the one that answered) or by a tag's value."""
        import pandas as pd

        self.flush()
        if by == "model":
            group = "COALESCE(model_used, model)"
            params: list[Any] = []
        else:
            _check_tag_key(by)
            group = "COALESCE(json_extract(tags, '$.' || ?), '(untagged)')"
            params = [by]
        # {group} is one of the two fixed expressions above; the tag key is a bound parameter
        sql = (
            f"SELECT {group} AS grp, COUNT(*), SUM(status = 'ok'), SUM(status IN ('error', 'interrupted')),"  # noqa: S608
            " SUM(status = 'refused'), SUM(cache_hit),"
            " SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_usd), SUM(cost_usd IS NULL AND status = 'ok')"
            f" FROM calls GROUP BY grp ORDER BY SUM(cost_usd) DESC, grp"
        )
        rows = self.store.execute(sql, params).fetchall()
        columns = [by, "calls", "answered", "failed", "refused", "cache_hits", "prompt_tokens", "completion_tokens",
                   "cost_usd",
                   "unpriced_calls"]
        frame = pd.DataFrame(rows, columns=columns)
        frame["cost_usd"] = frame["cost_usd"].fillna(0.0)
        return frame.set_index(by)

    # budgets
    def set_budget(self, usd: float | None, tag: tuple[str, str] | None = None) -> Budget | None:
        if tag is not None:
            if not (isinstance(tag, tuple | list) and len(tag) == 2):
                raise ConfigError(f"tag={tag!r} must be a (key, value) pair, e.g. tag=('project', 'demo')")
            tag = (_check_tag_key(tag[0]), str(tag[1]))
        scope = "global" if tag is None else f"{tag[0]}={tag[1]}"
        if usd is None:
            self.store.execute("DELETE FROM budgets WHERE scope = ?", (scope,))
            return None
        if isinstance(usd, bool) or not isinstance(usd, int | float) or math.isnan(usd) or usd < 0:
            raise ConfigError(f"usd={usd!r} is not a budget: pass an amount in USD >= 0, e.g. set_budget(usd=5.0)")
        now = time.time()
        self.store.execute(
            "INSERT OR REPLACE INTO budgets (scope, tag_key, tag_value, usd, since) VALUES (?, ?, ?, ?,"
            " COALESCE((SELECT since FROM budgets WHERE scope = ?), ?))",
            (scope, tag[0] if tag else None, tag[1] if tag else None, float(usd), scope, now),
        )
        return self.budget(scope)

    def budget(self, scope: str) -> Budget | None:
        row = self.store.execute("SELECT usd, tag_key, tag_value, since FROM budgets WHERE scope = ?",
                                 (scope,)).fetchone()
        if row is None:
            return None
        return Budget(row[0], None if row[1] is None else (row[1], row[2]), row[3])

    def budgets(self) -> list[Budget]:
        rows = self.store.execute("SELECT usd, tag_key, tag_value, since FROM budgets ORDER BY scope").fetchall()
        return [Budget(r[0], None if r[1] is None else (r[1], r[2]), r[3]) for r in rows]

    def budgets_for(self, tags: dict[str, str]) -> list[Budget]:
        return [b for b in self.budgets() if b.tag is None or tags.get(b.tag[0]) == b.tag[1]]
