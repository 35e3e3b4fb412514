"""The golden store: `<home>/golden.sqlite` (WAL, busy timeout), so two kernels adding rows at once lose none.

Every add, edit and delete is written at once (an append or a one-row update), never as a rewrite of the
whole dataset; `versions` records each saved state's digest and the MLflow evaluation dataset it became.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from workbench.datasets.rows import GoldenRow
from workbench.sqlite_store import SqliteStore, per_home

__all__ = ["GoldenStore", "store"]

_MIGRATIONS = [
    (
        "0001_golden",
        """
        CREATE TABLE IF NOT EXISTS golden_rows (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            dataset TEXT NOT NULL,
            row_id TEXT NOT NULL,
            input TEXT NOT NULL,
            expected TEXT,
            verified INTEGER NOT NULL DEFAULT 0,
            tags TEXT NOT NULL DEFAULT '[]',
            source TEXT,
            notes TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            UNIQUE (dataset, row_id)
        );
        CREATE INDEX IF NOT EXISTS golden_rows_dataset ON golden_rows (dataset, seq);
        CREATE TABLE IF NOT EXISTS golden_datasets (
            name TEXT PRIMARY KEY,
            created_at REAL NOT NULL,
            description TEXT
        );
        CREATE TABLE IF NOT EXISTS golden_versions (
            dataset TEXT NOT NULL,
            version INTEGER NOT NULL,
            digest TEXT NOT NULL,
            rows INTEGER NOT NULL,
            created_at REAL NOT NULL,
            mlflow_dataset_id TEXT,
            PRIMARY KEY (dataset, version)
        )
        """,
    ),
]

_COLUMNS = "row_id, input, expected, verified, tags, source, notes"


def _encode_input(value: Any) -> str:
    # a JSON string for both forms, so messages and prompts round-trip exactly
    return json.dumps(value, ensure_ascii=False)


def _row(record: tuple[Any, ...]) -> GoldenRow:
    row_id, raw_input, expected, verified, tags, source, notes = record
    return GoldenRow(json.loads(raw_input), expected, bool(verified), json.loads(tags), source, notes, row_id)


class GoldenStore:
    def __init__(self, path: Path) -> None:
        self.db = SqliteStore(path, _MIGRATIONS)
        self.path = Path(path)

    def ensure(self, name: str) -> bool:
        """Create the dataset if new; True when it was created now."""
        cursor = self.db.execute("INSERT OR IGNORE INTO golden_datasets (name, created_at) VALUES (?, ?)",
                                 (name, time.time()))
        return cursor.rowcount == 1

    def exists(self, name: str) -> bool:
        return self.db.execute("SELECT 1 FROM golden_datasets WHERE name = ?", (name,)).fetchone() is not None

    def names(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM golden_datasets ORDER BY name")]

    def rows(self, name: str) -> list[GoldenRow]:
        query = f"SELECT {_COLUMNS} FROM golden_rows WHERE dataset = ? ORDER BY seq"  # noqa: S608 - our constant
        return [_row(r) for r in self.db.execute(query, (name,))]

    def count(self, name: str) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM golden_rows WHERE dataset = ?", (name,)).fetchone()[0])

    def append(self, name: str, rows: list[GoldenRow]) -> int:
        """Insert rows in one transaction; a row whose row_id is already there is skipped. Returns rows added."""
        now = time.time()
        for r in rows:
            if not r.row_id:
                r.row_id = uuid.uuid4().hex[:16]
        values = [(name, r.row_id, _encode_input(r.input), r.expected, int(r.verified), json.dumps(r.tags),
                   r.source, r.notes, now, now) for r in rows]
        conn = self.db.connect()
        before = conn.total_changes
        self.db.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT OR IGNORE INTO golden_rows (dataset, row_id, input, expected, verified, tags, source, notes,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return conn.total_changes - before

    def update(self, name: str, row: GoldenRow) -> bool:
        cursor = self.db.execute(
            "UPDATE golden_rows SET input = ?, expected = ?, verified = ?, tags = ?, source = ?, notes = ?,"
            " updated_at = ? WHERE dataset = ? AND row_id = ?",
            (_encode_input(row.input), row.expected, int(row.verified), json.dumps(row.tags), row.source, row.notes,
             time.time(), name, row.row_id))
        return cursor.rowcount == 1

    def delete(self, name: str, row_ids: list[str]) -> int:
        removed = 0
        for row_id in row_ids:
            removed += self.db.execute("DELETE FROM golden_rows WHERE dataset = ? AND row_id = ?",
                                       (name, row_id)).rowcount
        return removed

    def clear(self, name: str) -> int:
        return self.db.execute("DELETE FROM golden_rows WHERE dataset = ?", (name,)).rowcount

    # -- versions
    def versions(self, name: str) -> list[dict[str, Any]]:
        query = ("SELECT version, digest, rows, created_at, mlflow_dataset_id FROM golden_versions "
                 "WHERE dataset = ? ORDER BY version")
        keys = ("version", "digest", "rows", "created_at", "mlflow_dataset_id")
        return [dict(zip(keys, r, strict=True)) for r in self.db.execute(query, (name,))]

    def add_version(self, name: str, digest: str, rows: int) -> tuple[int, bool]:
        """(version number, created now): a digest already saved keeps its number."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            found = self.db.execute("SELECT version FROM golden_versions WHERE dataset = ? AND digest = ?",
                                    (name, digest)).fetchone()
            if found:
                self.db.execute("COMMIT")
                return int(found[0]), False
            last = self.db.execute("SELECT MAX(version) FROM golden_versions WHERE dataset = ?", (name,)).fetchone()[0]
            version = int(last or 0) + 1
            self.db.execute("INSERT INTO golden_versions VALUES (?, ?, ?, ?, ?, NULL)",
                            (name, version, digest, rows, time.time()))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return version, True

    def set_mlflow_id(self, name: str, version: int, dataset_id: str) -> None:
        self.db.execute("UPDATE golden_versions SET mlflow_dataset_id = ? WHERE dataset = ? AND version = ?",
                        (dataset_id, name, version))


def store() -> GoldenStore:
    """The golden store of the current home folder."""
    return per_home("golden.sqlite", GoldenStore)
