"""Secrets out of everything we store, not only traces: journal rows, training exports, cached answers, golden rows.

A key typed into a prompt (or echoed back by a model) is scrubbed from traces; the same must hold for every
other store and file we write, some of which are meant for sharing (SFT/preference JSONL, golden datasets in
git, a team's MLflow). `scrub_value` redacts every string inside a JSON-like value, keys included.
"""

from __future__ import annotations

from typing import Any

from workbench.secrets import redact

__all__ = ["scrub_value", "scrub_text"]


def scrub_text(text: str | None) -> str | None:
    return text if text is None else redact(text)


def scrub_value(value: Any) -> Any:
    """A copy of `value` (str, list, tuple, dict, nested) with every string redacted; other values as they are."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {scrub_value(k) if isinstance(k, str) else k: scrub_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(scrub_value(v) for v in value)
    return value
