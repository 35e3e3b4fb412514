"""The persistent answer cache: a sqlite file under the home folder.

The gateway asks the cache before the budget and before litellm, so a hit is free and never refused;
that is why it calls this backend itself instead of through litellm.Cache, whose lookup sits inside
the provider call. The class also speaks litellm's cache-backend protocol (get_cache/set_cache and
their async forms), so `litellm.Cache` can use it for code that calls litellm directly.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workbench.scrub import scrub_value
from workbench.sqlite_store import SqliteStore

__all__ = ["AnswerCache", "cache_key", "key_material", "Unkeyable"]

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
# A header whose name holds one of these words is a credential: it is in the key as a digest, never in clear.
_SECRET_HEADER_WORDS = ("auth", "key", "token", "secret", "cookie", "password", "signature")


class Unkeyable(TypeError):
    """A value the key cannot describe faithfully (an arbitrary object): such a call is not cached."""


def _canonical(value: Any) -> Any:
    """A JSON value that stands for `value` and nothing else. repr() is not that: two pydantic classes of one name
    (a cell run twice with new fields, another notebook's class) have the same repr and different schemas."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise Unkeyable(f"a mapping with non-string keys ({list(value)[:3]!r})")
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    schema = getattr(value, "model_json_schema", None)
    if isinstance(value, type) and callable(schema):  # a pydantic model class
        return {"$schema": _canonical(schema())}
    if callable(getattr(value, "model_dump", None)) and not isinstance(value, type):  # a pydantic instance
        return {"$model": type(value).__name__, "value": _canonical(value.model_dump(mode="json"))}
    raise Unkeyable(f"{type(value).__name__} values")


def _headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for name, value in headers.items():
        lowered = str(name).lower()
        if any(word in lowered for word in _SECRET_HEADER_WORDS):
            value = "sha256:" + hashlib.sha256(str(value).encode("utf-8", "surrogatepass")).hexdigest()
        clean[lowered] = _canonical(value)
    return clean


def key_material(target: str, messages: list[dict[str, Any]], params: Mapping[str, Any],
                 headers: Mapping[str, Any] | None = None) -> str:
    """Canonical JSON of everything that changes the answer; raises Unkeyable for what it cannot describe."""
    material = {
        "target": target,
        "messages": _canonical(messages),
        "params": {k: _canonical(v) for k, v in sorted(params.items()) if k not in _NOT_IN_KEY},
        "headers": _headers(headers or {}),
    }
    # ensure_ascii: a lone surrogate in a prompt is escaped, not an encoding error
    return json.dumps(material, sort_keys=True, ensure_ascii=True, separators=(",", ":"), allow_nan=False)


def cache_key(target: str, messages: list[dict[str, Any]], params: Mapping[str, Any],
              headers: Mapping[str, Any] | None = None) -> str:
    """A digest of everything that changes the answer: the resolved model, every message, every param, the
    headers (credentials among them as digests). "" when something cannot be keyed: that call is not cached."""
    try:
        blob = key_material(target, messages, params, headers)
    except Unkeyable:
        return ""
    return hashlib.sha256(blob.encode("ascii")).hexdigest()


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
