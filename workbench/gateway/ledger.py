"""The cost ledger: one row per call (cache hits at cost 0), with its tags; spend, budgets and reservations.

Rows go to a sqlite file under the home folder (WAL, busy timeout), so two kernels can write at once. A call under a
budget first reserves its estimated cost (`reserve`, one BEGIN IMMEDIATE transaction that checks and reserves, so
threads and processes sharing the home cannot all pass the same check); its ledger row, written later in a batch,
deletes its reservation in the same transaction that inserts the row (settled with the real cost).
"""

from __future__ import annotations

import atexit
import json
import math
import os
import queue
import sqlite3
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import ConfigError, StoreError, WorkbenchWarning
from workbench.identity import user
from workbench.secrets import redact
from workbench.sqlite_store import SqliteStore

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Ledger", "LedgerRow", "Budget", "Refusal", "tag_value", "STALE_RESERVATION_S"]

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
    # who made the call (workbench.identity): on a shared home or an exported ledger, a team filters by person
    ("0003_add_user", "ALTER TABLE calls ADD COLUMN user TEXT"),
    (
        "0004_create_reservations",
        """
        CREATE TABLE IF NOT EXISTS reservations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            created_at REAL NOT NULL,
            pid INTEGER NOT NULL,
            usd REAL NOT NULL,
            tags TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX IF NOT EXISTS calls_model_used ON calls (model_used, id)
        """,
    ),
]
# A reservation older than this is a call that never settled (its process died on another machine sharing the
# home, or was paused for an hour): it stops counting. Dead processes on this machine are noticed at once.
STALE_RESERVATION_S = 3600.0


@dataclass(frozen=True)
class LedgerRow:
    model: str
    model_used: str | None
    # "ok", "error", "interrupted" (a stream broke), "stopped" (the reader stopped it, or Ctrl-C: its tokens and cost
    # are what was counted so far, or the estimate) or "refused" (over budget: nothing was sent)
    status: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    latency_ms: float
    cache_hit: bool
    failed_attempts: int
    tags: dict[str, str]
    trace_id: str | None = None
    reservation: int | None = None  # the budget reservation this row settles (deleted when the row is written)


@dataclass(frozen=True)
class Refusal:
    """Why reserve() said no: the budget and what is spent or reserved under it."""

    budget: Budget
    spent_usd: float


@dataclass(frozen=True)
class Budget:
    usd: float
    tag: tuple[str, str] | None  # None: every call
    since: float

    @property
    def scope(self) -> str:
        return "global" if self.tag is None else f"{self.tag[0]}={self.tag[1]}"


def _check_tag_key(key: object) -> str:
    if not isinstance(key, str) or not key.strip():
        raise ConfigError(f"tag key {key!r} must be a non-empty string, e.g. 'project'")
    return key.strip()


def tag_value(column: str) -> str:
    """SQL for the value of the tag key bound as its parameter, in the JSON object `column` (a fixed column name).

    json_each compares decoded keys, so a key is an opaque string: json_extract's path syntax would read the dot of
    'cost.center' as a path step (and SQLite 3.40 cannot escape a quote in a quoted path label)."""
    return f"(SELECT value FROM json_each({column}) WHERE key = ?)"  # noqa: S608 - a column name of ours


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
        """Write what is queued and stop the writer thread. A ledger that cannot be written (its home was never
        usable) says how many rows it could not keep, once, instead of failing whoever changes the settings."""
        try:
            self.flush()
        except StoreError as exc:
            warnings.warn(f"{self._pending.qsize()} ledger row(s) not saved: {exc}", WorkbenchWarning, stacklevel=2)
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
            json.dumps({k: redact(v) for k, v in row.tags.items()}, sort_keys=True), row.trace_id, user(),
            row.reservation,
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

    def _take_pending(self) -> list[tuple[Any, ...]]:
        rows = []
        while True:
            try:
                rows.append(self._pending.get_nowait())
            except queue.Empty:
                return rows

    @staticmethod
    def _insert(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        """Insert rows and delete the reservations they settle (inside the caller's transaction)."""
        conn.executemany(
            "INSERT INTO calls (created_at, model, model_used, status, prompt_tokens, completion_tokens,"
            " cost_usd, latency_ms, cache_hit, failed_attempts, tags, trace_id, user)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [row[:-1] for row in rows],
        )
        settled = [(row[-1],) for row in rows if row[-1] is not None]
        if settled:
            conn.executemany("DELETE FROM reservations WHERE id = ?", settled)

    def flush(self) -> None:
        """Write every queued row now (one transaction)."""
        with self._write_lock:
            rows = self._take_pending()
            if not rows:
                return
            conn = self.store.connect()
            try:
                conn.execute("BEGIN IMMEDIATE")
                self._insert(conn, rows)
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                for row in rows:  # keep them for the next try: a ledger loses nothing
                    self._pending.put(row)
                raise StoreError(f"cannot write the ledger {self.path}: {exc}; check the disk and the folder") from exc

    def reserve(self, budgets: list[Budget], tags: dict[str, str], usd: float) -> int | Refusal:
        """Check every budget in `budgets` and reserve `usd` under them, in one BEGIN IMMEDIATE transaction (so no
        other thread or process can pass the same check meanwhile). Returns the reservation id, or the Refusal.
        Queued rows are written in the same transaction first: what this process spent counts at its real cost."""
        with self._write_lock:
            rows = self._take_pending()
            conn = self.store.connect()
            try:
                conn.execute("BEGIN IMMEDIATE")
                if rows:
                    self._insert(conn, rows)
                self._drop_stale(conn)
                for budget in budgets:
                    spent = self._spent_in(conn, budget.tag, budget.since, reserved=True)
                    if spent >= budget.usd or spent + usd > budget.usd:
                        conn.execute("COMMIT")  # the queued rows are written; nothing is reserved
                        return Refusal(budget, spent)
                cursor = conn.execute(
                    "INSERT INTO reservations (created_at, pid, usd, tags) VALUES (?, ?, ?, ?)",
                    (time.time(), os.getpid(), usd, json.dumps({k: redact(v) for k, v in tags.items()})),
                )
                conn.execute("COMMIT")
                return int(cursor.lastrowid or 0)
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                for row in rows:
                    self._pending.put(row)
                raise StoreError(f"cannot check the budget in {self.path}: {exc}; check the disk and the folder"
                                 ) from exc

    @staticmethod
    def _drop_stale(conn: sqlite3.Connection) -> None:
        """Reservations of processes gone from this machine, or older than STALE_RESERVATION_S, no longer count."""
        conn.execute("DELETE FROM reservations WHERE created_at < ?", (time.time() - STALE_RESERVATION_S,))
        for (pid,) in conn.execute("SELECT DISTINCT pid FROM reservations WHERE pid != ?", (os.getpid(),)).fetchall():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                conn.execute("DELETE FROM reservations WHERE pid = ?", (pid,))
            except OSError:  # alive but not ours to signal (another user): it stands
                pass

    def release(self, reservation: int) -> None:
        """Give a reservation back without a row (the row's own write settles it otherwise)."""
        self.store.execute("DELETE FROM reservations WHERE id = ?", (reservation,))

    def reserved_usd(self) -> float:
        """USD reserved by calls in flight (every process); queued rows settle theirs first."""
        self.flush()
        return float(self.store.execute("SELECT COALESCE(SUM(usd), 0) FROM reservations").fetchone()[0])

    def typical_completion_tokens(self, model: str) -> int:
        """The most completion tokens among this model's last answers (0 when none): the estimate of a call that
        sets no max_tokens."""
        row = self.store.execute(
            "SELECT MAX(completion_tokens) FROM (SELECT completion_tokens FROM calls WHERE model_used = ?"
            " AND status = 'ok' AND cache_hit = 0 ORDER BY id DESC LIMIT 20)", (model,)).fetchone()
        return int(row[0] or 0)

    @staticmethod
    def _spent_in(conn: sqlite3.Connection, tag: tuple[str, str] | None, since: float, *, reserved: bool) -> float:
        sql = "SELECT COALESCE(SUM(cost_usd), 0) FROM calls WHERE created_at >= ?"
        params: list[Any] = [since]
        if tag is not None:
            sql += f" AND {tag_value('calls.tags')} = ?"
            params += [tag[0], tag[1]]
        spent = float(conn.execute(sql, params).fetchone()[0])
        if reserved:  # calls in flight count at their estimate, whenever they started
            sql = "SELECT COALESCE(SUM(usd), 0) FROM reservations"
            params = []
            if tag is not None:
                sql += f" WHERE {tag_value('reservations.tags')} = ?"
                params = [tag[0], tag[1]]
            spent += float(conn.execute(sql, params).fetchone()[0])
        return spent

    def count(self) -> int:
        self.flush()
        return int(self.store.execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def spent_usd(self, tag: tuple[str, str] | None = None, since: float = 0.0) -> float:
        self.flush()
        try:
            return self._spent_in(self.store.connect(), tag, since, reserved=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the ledger {self.path}: {exc}") from exc

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
            by = _check_tag_key(by)
            group = f"COALESCE({tag_value('calls.tags')}, '(untagged)')"
            params = [by]
        # {group} is one of the two fixed expressions above; the tag key is a bound parameter
        sql = (
            f"SELECT {group} AS grp, COUNT(*), SUM(status = 'ok'), SUM(status IN ('error', 'interrupted')),"  # noqa: S608
            " SUM(status = 'stopped'), SUM(status = 'refused'), SUM(cache_hit),"
            " SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_usd), SUM(cost_usd IS NULL AND status = 'ok')"
            f" FROM calls GROUP BY grp ORDER BY SUM(cost_usd) DESC, grp"
        )
        rows = self.store.execute(sql, params).fetchall()
        columns = [by, "calls", "answered", "failed", "stopped", "refused", "cache_hits", "prompt_tokens",
                   "completion_tokens", "cost_usd", "unpriced_calls"]
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
