"""Span payloads (inputs, outputs, attributes) made JSON-safe, secret-free and, for display, truncated.

Redaction runs once over a whole serialized payload rather than per string: one pass of the patterns over
a few hundred KB is far cheaper than thousands of small passes (a 1,000-span trace must render in < 50 ms).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from typing import Any

from workbench.secrets import redact, secret_values

__all__ = ["jsonable", "scrub", "scrub_many", "scrub_sized", "scrub_text", "truncate", "TRUNCATED", "dumps"]

TRUNCATED = "__truncated__"  # key of the object that stands in for a truncated string (see docs/trace-schema.md)
_MAX_DEPTH = 12
_MAX_ITEMS = 1000


_LEAVES = (type(None), bool, int, str)


def jsonable(value: Any, _depth: int = 0) -> Any:
    """A JSON-safe copy: dataclasses and pydantic models become dicts, anything else its repr."""
    kind = type(value)
    if kind in _LEAVES:  # the common case first: this runs once per value of every span
        return value
    if kind is float:
        return value if math.isfinite(value) else str(value)
    if kind is dict or isinstance(value, dict):
        if _depth >= _MAX_DEPTH:
            return repr(value)[:200]
        items = value.items() if len(value) <= _MAX_ITEMS else list(value.items())[:_MAX_ITEMS]
        return {k if type(k) is str else str(k): jsonable(v, _depth + 1) for k, v in items}
    if kind is list or isinstance(value, list | tuple | set | frozenset):
        if _depth >= _MAX_DEPTH:
            return repr(value)[:200]
        return [jsonable(v, _depth + 1) for v in (value if len(value) <= _MAX_ITEMS else list(value)[:_MAX_ITEMS])]
    if isinstance(value, bool | int | str):  # subclasses (enums...)
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if _depth >= _MAX_DEPTH:
        return repr(value)[:200]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name, None), _depth + 1) for f in dataclasses.fields(value)
                if f.repr}
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        with contextlib.suppress(Exception):  # a broken model_dump must not break a trace: its repr() is kept
            return jsonable(dump(), _depth + 1)
    if hasattr(value, "to_dict") and callable(value.to_dict) and not isinstance(value, type):
        with contextlib.suppress(Exception):
            return jsonable(value.to_dict(), _depth + 1)
    return repr(value)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# A literal that each of secrets._KEY_PATTERNS needs in order to match: when none is in the text, the
# patterns cannot match and only the secret values need replacing (tests keep this list in step).
_PATTERN_HINTS = ("sk-", "aiza", "gsk_", "xai_", "hf_", "pplx_", "r8_", "bearer", "://")


def scrub_text(text: str, secrets: list[str] | None = None) -> str:
    """redact() plus the JSON-escaped form of each secret value (a key quoted inside serialized JSON)."""
    values = secrets if secrets is not None else secret_values()
    for value in values:
        escaped = json.dumps(value, ensure_ascii=False)[1:-1]
        if escaped != value and escaped in text:
            text = text.replace(escaped, "***")
    lowered = text.lower()
    if any(hint in lowered for hint in _PATTERN_HINTS):
        return redact(text)
    for value in values:
        if value in text:
            text = text.replace(value, "***")
    return text


def _default(value: Any) -> Any:
    """json.dumps' hook for what it cannot encode itself."""
    if isinstance(value, set | frozenset):
        return list(value)
    return jsonable(value)


def _plain_text(value: Any) -> tuple[Any, str]:
    """(JSON-safe copy, its serialization). The C encoder does the walk; an odd value (NaN, a cycle, a
    non-string key) sends us the slow way, through jsonable()."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_default)
    except (TypeError, ValueError, RecursionError):
        plain = jsonable(value)
        return plain, dumps(plain)
    return None, text


def scrub(value: Any) -> Any:
    """A JSON-safe, secret-free copy of `value` (one redaction pass over its serialized form)."""
    return scrub_sized(value)[0]


def scrub_sized(value: Any) -> tuple[Any, int]:
    """scrub(), plus the length of the copy's compact JSON (so callers can size payloads without re-encoding)."""
    plain, text = _plain_text(value)
    clean = scrub_text(text)
    if plain is not None and clean == text:
        return plain, len(text)
    try:
        return json.loads(clean), len(clean)
    except ValueError:  # a mask landed across JSON syntax: fall back to masking string by string
        plain = _scrub_each(plain if plain is not None else json.loads(text))
        return plain, len(dumps(plain))


def scrub_many(values: list[Any]) -> list[Any]:
    """scrub() of each item, in one redaction pass; no cap on the number of items (one per span)."""
    return scrub(list(values))


def _scrub_each(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(k): _scrub_each(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_each(v) for v in value]
    return value


def truncate(value: Any, limit: int, longest: list[int] | None = None) -> Any:
    """Strings longer than `limit` become {"__truncated__": true, "preview": <first limit chars>, "length": n}.
    `longest`, when given, is a one-item list raised to the longest string length seen."""
    kind = type(value)
    if kind is str:
        size = len(value)
        if longest is not None and size > longest[0]:
            longest[0] = size
        if size > limit:
            return {TRUNCATED: True, "preview": value[:limit], "length": size}
        return value
    if kind is dict:
        return {k: truncate(v, limit, longest) for k, v in value.items()}
    if kind is list:
        return [truncate(v, limit, longest) for v in value]
    return value
