"""Small sqlite stores shared by threads and processes: WAL, a busy timeout, named migrations.

Used by the answer cache, the cost ledger, golden datasets and the signals journal. `per_home(filename, factory)`
is the one way to get "the store of the current home": opened once per process and home, dropped (and closed)
when configure() or reset_settings() changes the settings.

Each store file has a `schema_migrations` table; a migration runs once, under a file lock, so two
kernels opening a fresh home at the same moment do not race to create tables.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from filelock import FileLock

from workbench import config
from workbench.errors import StoreError

__all__ = ["SqliteStore", "per_home", "forget_per_home"]

T = TypeVar("T")

BUSY_TIMEOUT_S = 60.0


class SqliteStore:
    """One sqlite file; one connection per thread; migrations applied once on first use."""

    def __init__(self, path: Path, migrations: Sequence[tuple[str, str]]) -> None:
        self.path = Path(path)
        self._migrations = list(migrations)
        self._local = threading.local()
        self._ready = False
        self._ready_lock = threading.Lock()

    def connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self._ensure_ready()
            conn = self._open()
            self._local.conn = conn
        return conn

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open {self.path}: {exc}; check the folder is writable "
                             "or set WORKBENCH_HOME") from exc
        return conn

    def _ensure_ready(self) -> None:
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the folder {self.path.parent}: {exc.strerror or exc}; check the path "
                                 "is a writable folder, or set WORKBENCH_HOME") from exc
            with FileLock(str(self.path) + ".lock", timeout=BUSY_TIMEOUT_S):
                conn = self._open()
                try:
                    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                                 "(name TEXT PRIMARY KEY, applied_at REAL)")
                    done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
                    for name, sql in self._migrations:
                        if name in done:
                            continue
                        conn.execute("BEGIN IMMEDIATE")
                        for statement in filter(str.strip, sql.split(";")):
                            conn.execute(statement)
                        conn.execute("INSERT INTO schema_migrations VALUES (?, strftime('%s','now'))", (name,))
                        conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    raise StoreError(f"cannot prepare {self.path}: {exc}; move the file aside to start afresh") from exc
                finally:
                    conn.close()
            self._ready = True

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return self.connect().execute(sql, params)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path.name}: {exc} (while running {sql.split()[0]})") from exc

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


# filename -> the store opened in the current home. Keyed by name alone: every change of the settings (the only
# way the home changes) empties it, and the hot path (a cache lookup per call) then joins no paths.
_opened: dict[str, Any] = {}
_opened_lock = threading.Lock()


def per_home(filename: str, factory: Callable[[Path], T]) -> T:
    """The store kept in `<home>/<filename>` for the current home: `factory(path)` on first use, then the same one."""
    found = _opened.get(filename)
    if found is None:
        with _opened_lock:
            found = _opened.get(filename)
            if found is None:
                found = _opened[filename] = factory(config.settings().home / filename)
    return cast(T, found)


def forget_per_home() -> None:
    """Close and drop every store per_home() opened (after the home folder changes; tests)."""
    with _opened_lock:
        found = list(_opened.values())
        _opened.clear()
    for store in found:
        close = getattr(store, "close", None)
        if close is not None:
            close()


config.on_change(forget_per_home)
