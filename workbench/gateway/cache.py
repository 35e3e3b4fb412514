"""The persistent answer cache: a sqlite file under the home folder.

The gateway asks the cache before the budget and before litellm, so a hit is free and never refused;
that is why it calls this backend itself instead of through litellm.Cache, whose lookup sits inside
the provider call. The class also speaks litellm's cache-backend protocol (get_cache/set_cache and
their async forms), so `litellm.Cache` can use it for code that calls litellm directly.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from workbench.scrub import scrub_value
from workbench.sqlite_store import SqliteStore

__all__ = ["AnswerCache", "cache_key"]

_MIGRATIONS = [
    (
        "0001_create_answers",
        """
        CREATE TABLE IF NOT EXISTS answers (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            model TEXT,
            created_at REAL NOT NULL,
            expires_at REAL
        );
        CREATE INDEX IF NOT EXISTS answers_expiry ON answers (expires_at)
        """,
    )
]

# Parameters that never change the answer, left out of the key (api keys must never be in it anyway).
_NOT_IN_KEY = {"stream", "stream_options", "timeout", "metadata", "api_key", "num_retries", "mock_timeout", "user"}


def cache_key(target: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    """A digest of everything that changes the answer: the model, every message, every param."""
    material = {
        "target": target,
        "messages": messages,
        "params": {k: v for k, v in sorted(params.items()) if k not in _NOT_IN_KEY},
    }
    blob = json.dumps(material, sort_keys=True, default=repr, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class AnswerCache:
    def __init__(self, path: Path) -> None:
        self.store = SqliteStore(path, _MIGRATIONS)

    @property
    def path(self) -> Path:
        return self.store.path

    def get(self, key: str) -> dict[str, Any] | None:
        row = self.store.execute("SELECT value, expires_at FROM answers WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        value, expires_at = row
        if expires_at is not None and expires_at < time.time():
            self.store.execute("DELETE FROM answers WHERE key = ? AND expires_at = ?", (key, expires_at))
            return None
        return json.loads(value)

    def set(self, key: str, value: dict[str, Any], *, ttl_s: float | None = None, model: str | None = None) -> None:
        now = time.time()
        expires = now + ttl_s if ttl_s else None
        self.store.execute(
            "INSERT OR REPLACE INTO answers (key, value, model, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            # the key is a digest; the stored answer is scrubbed (a model may echo a key typed into the prompt)
            (key, json.dumps(scrub_value(value), ensure_ascii=False), model, now, expires),
        )

    def clear(self) -> int:
        """Remove every cached answer; returns how many there were."""
        count = self.count()
        self.store.execute("DELETE FROM answers")
        return count

    def count(self) -> int:
        return int(self.store.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    # litellm's cache-backend protocol
    def set_cache(self, key: str, value: Any, **kwargs: Any) -> None:
        self.set(key, {"litellm": value if isinstance(value, str | int | float | list | dict) else str(value)},
                 ttl_s=kwargs.get("ttl"))

    def get_cache(self, key: str, **kwargs: Any) -> Any:
        found = self.get(key)
        return None if found is None else found.get("litellm")

    async def async_set_cache(self, key: str, value: Any, **kwargs: Any) -> None:
        self.set_cache(key, value, **kwargs)

    async def async_get_cache(self, key: str, **kwargs: Any) -> Any:
        return self.get_cache(key, **kwargs)

    def flush_cache(self) -> None:
        self.clear()
