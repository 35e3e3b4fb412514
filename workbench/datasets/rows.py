"""GoldenRow, the record of one golden example, and the content digest that names a dataset's version."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import ConfigError
from workbench.scrub import scrub_text, scrub_value

__all__ = ["GoldenRow", "digest", "normalize_input", "normalize_tags", "parse_bool", "input_text", "row_key"]

_TRUE = ("1", "true", "yes", "y", "t", "verified", "x")
_FALSE = ("", "0", "false", "no", "n", "f", "none", "null", "nan")


def normalize_input(value: Any) -> str | list[dict[str, Any]]:
    """A prompt string or a list of chat messages ({role, content}); anything else is refused by name."""
    if isinstance(value, str):
        if not value.strip():
            raise ConfigError("input is empty: a golden row needs a prompt (or a list of chat messages)")
        return value
    if isinstance(value, list | tuple) and value and all(isinstance(m, dict) and "role" in m for m in value):
        return [dict(m) for m in value]
    raise ConfigError(f"input={value!r:.80} is neither a prompt string nor a list of messages like "
                      "[{'role': 'user', 'content': '...'}]")


def normalize_tags(value: Any) -> list[str]:
    """Tags as a sorted list of strings: accepts 'a, b', ['a', 'b'], a JSON list, or {'k': 'v'} (as 'k=v')."""
    if value is None or (isinstance(value, float) and value != value):
        return []
    if isinstance(value, dict):
        return sorted(f"{k}={v}" for k, v in value.items())
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return normalize_tags(json.loads(text))
            except ValueError:
                pass
        parts = text.replace(";", ",").split(",")
        return sorted({p.strip() for p in parts if p.strip()})
    if isinstance(value, list | tuple | set):
        return sorted({str(v).strip() for v in value if str(v).strip()})
    raise ConfigError(f"tags={value!r:.80} is not a list of strings, e.g. tags=['geography', 'easy']")


def parse_bool(value: Any, what: str = "verified") -> bool:
    if isinstance(value, bool):
        return value
    if value is None or (isinstance(value, float) and value != value):
        return False
    if isinstance(value, int | float):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{what}={value!r} is not yes or no: use true/false, 1/0 or yes/no")


def _check_encodable(content: dict[str, Any]) -> None:
    """A lone surrogate (a file name from a non-UTF-8 folder, a '\\ud800' escape in JSON) cannot be stored:
    say which field holds it here, rather than fail inside the store."""
    for name, value in content.items():
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = exc.object[exc.start:exc.end]
            raise ConfigError(f"{name} holds {bad!r}, half of a character (a lone surrogate) that cannot be saved; "
                              "fix the text, e.g. value.encode('utf-8', 'replace').decode()") from None


def _optional_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value)


@dataclass
class GoldenRow:
    """One golden example. `expected` is the answer a human would accept; `verified` says a human checked it."""

    input: str | list[dict[str, Any]]
    expected: str | None = None
    verified: bool = False
    tags: list[str] = field(default_factory=list)
    source: str | None = None  # a trace id, a cell ("cell 5"), a file name
    notes: str | None = None
    row_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])

    def __post_init__(self) -> None:
        self.row_id = str(self.row_id) if self.row_id is not None else ""
        # scrubbed at birth, so no store, MLflow dataset or JSONL file made from a row can hold a key
        self.input = scrub_value(normalize_input(self.input))
        self.expected = scrub_text(_optional_text(self.expected))
        self.verified = parse_bool(self.verified)
        self.tags = normalize_tags(self.tags)
        self.source = scrub_text(_optional_text(self.source))
        self.notes = scrub_text(_optional_text(self.notes))
        _check_encodable(self.content())

    def content(self) -> dict[str, Any]:
        """What the digest covers: everything but the row id."""
        return {"input": self.input, "expected": self.expected, "verified": self.verified, "tags": self.tags,
                "source": self.source, "notes": self.notes}

    def to_dict(self) -> dict[str, Any]:
        return {**self.content(), "row_id": self.row_id}


def input_text(value: str | list[dict[str, Any]]) -> str:
    """A prompt as one string (messages joined), for tables, judges and keys."""
    if isinstance(value, str):
        return value
    return "\n".join(f"{m.get('role')}: {m.get('content')}" for m in value)


def row_key(value: object, occurrence: int = 0) -> str:
    """A stable key for pairing rows across evaluations: the input's content (and which duplicate it is)."""
    canonical = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(f"{occurrence}\x00{canonical}".encode()).hexdigest()[:16]


def digest(rows: list[GoldenRow]) -> str:
    """sha256 over the rows' content in order: the same rows give the same version name anywhere."""
    hasher = hashlib.sha256()
    for row in rows:
        hasher.update(json.dumps(row.content(), sort_keys=True, ensure_ascii=False).encode())
        hasher.update(b"\n")
    return hasher.hexdigest()
