"""Reading a score (or a pairwise verdict) out of a judge's free text.

Judges answer in many shapes: JSON, JSON in a fence after prose, "Score: 4", "4/5", "**4**", "4 out of 5".
Anything unparseable or out of range is None, and the caller keeps the raw text; it never raises.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

__all__ = ["parse_score", "parse_choice"]

_SCORE_KEYS = ("score", "rating", "similarity", "grade", "value", "result")
_REASON_KEYS = ("rationale", "reason", "reasoning", "explanation", "justification", "comment")
_NUMBER = r"(-?\d+(?:\.\d+)?)"
# In order of how explicit they are; the first pattern that matches wins.
_PATTERNS = [
    re.compile(r"(?:score|rating|grade|similarity)\s*(?:is|of|=|:)?\s*\**\s*" + _NUMBER, re.I),
    re.compile(_NUMBER + r"\s*/\s*(?:5|10|100)\b"),
    re.compile(_NUMBER + r"\s+out\s+of\s+(?:5|10|100)\b", re.I),
    re.compile(r"\*\*\s*" + _NUMBER + r"\s*\*\*"),
    re.compile(r"\[\[\s*" + _NUMBER + r"\s*\]\]"),
]


def _json_objects(text: str) -> list[Any]:
    """Every JSON object in the text: fenced blocks first, then balanced {...} spans."""
    found: list[Any] = []
    for block in re.findall(r"```(?:json)?\s*(.*?)```", text, re.S | re.I):
        with contextlib.suppress(ValueError):  # not JSON after all: the balanced-span scan below may still find some
            found.append(json.loads(block))
    depth, start = 0, -1
    for index, char in enumerate(text):
        if char == "{":
            if depth == 0:
                start = index
            depth += 1
        elif char == "}" and depth:
            depth -= 1
            if depth == 0:
                with contextlib.suppress(ValueError):  # braces that are not JSON
                    found.append(json.loads(text[start:index + 1]))
    return found


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*" + _NUMBER + r"(?:\s*/\s*\d+)?\s*", value)
        return float(match.group(1)) if match else None
    return None


def _in_range(value: float | None, low: float, high: float) -> float | None:
    if value is None or value != value or not low <= value <= high:
        return None
    return value


def parse_score(text: Any, low: float = 1, high: float = 5) -> tuple[float | None, str | None]:
    """(score, rationale) from a judge's answer; score None when there is none in [low, high]."""
    if not isinstance(text, str) or not text.strip():
        return None, None
    for obj in _json_objects(text):
        if isinstance(obj, dict):
            lowered = {str(k).lower(): v for k, v in obj.items()}
            for key in _SCORE_KEYS:
                if key in lowered:
                    reason = next((str(lowered[k]) for k in _REASON_KEYS if lowered.get(k)), None)
                    return _in_range(_number(lowered[key]), low, high), reason
    for pattern in _PATTERNS:
        match = pattern.search(text)
        if match:
            return _in_range(float(match.group(1)), low, high), _rationale(text, match)
    bare = _number(text.strip().strip("*.` "))
    if bare is not None:
        return _in_range(bare, low, high), None
    return None, None


def _rationale(text: str, match: re.Match[str]) -> str | None:
    # the judge's whole answer is its rationale, unless it said nothing beyond the score
    whole = " ".join(text.split())
    return whole[:500] if len(whole) > len(match.group(0)) + 3 else None


_CHOICE_PATTERNS = [
    re.compile(r"\[\[\s*(A|B|TIE)\s*\]\]", re.I),
    re.compile(r"(?:winner|better|choice|answer|verdict|prefer(?:red)?)\s*(?:is|:|=)?\s*\**\s*(?:answer\s+|response\s+)?"
               r"\(?\b(A|B|tie)\b\)?", re.I),
    re.compile(r"^\W*(A|B|tie)\W*$", re.I),
    re.compile(r"\b(?:answer|response)\s+(A|B)\s+is\s+better", re.I),
]


def parse_choice(text: Any) -> tuple[str | None, str | None]:
    """('A' | 'B' | 'tie' | None, rationale) from a pairwise judge's answer."""
    if not isinstance(text, str) or not text.strip():
        return None, None
    for obj in _json_objects(text):
        if isinstance(obj, dict):
            lowered = {str(k).lower(): v for k, v in obj.items()}
            for key in ("winner", "choice", "better", "verdict", "answer", "preferred"):
                value = str(lowered.get(key, "")).strip().upper()
                if value in ("A", "B", "TIE"):
                    reason = next((str(lowered[k]) for k in _REASON_KEYS if lowered.get(k)), None)
                    return ("tie" if value == "TIE" else value), reason
    for pattern in _CHOICE_PATTERNS:
        match = pattern.search(text.strip())
        if match:
            value = match.group(1).upper()
            return ("tie" if value == "TIE" else value), _rationale(text, match)
    return None, None
