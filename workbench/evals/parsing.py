"""Reading a score (or a pairwise verdict) out of a judge's free text.

Judges answer in many shapes: JSON, JSON in a fence after prose, "Score: 4", "4/5", "**4**", "4 out of 5".
Every statement of a score in the answer is collected (a JSON verdict counts once, with what is inside it):

- all statements agree: that is the score;
- they disagree: the judge's *final* verdict wins, i.e. the last statement, when it ends the answer and
  shares its line with no other statement (a judge that quotes a candidate's `{"score": 5}` and then gives
  its own `{"score": 1}` is read as 1);
- otherwise the answer is ambiguous and left unparsed (None): counted as a parse failure, never guessed.

An explicit scale is honoured: "x/N" or "x out of N" with N other than the top of our scale is mapped
linearly from low..N onto low..high (5/10 on 1-5 is 2.78, 10/10 is 5). A value off the scale, not finite
(`1e309`) or not a number is None. The caller keeps the raw text; this never raises.

Parsing is linear in the answer's length (judges' answers are untrusted: they quote the candidate):
no regex here can backtrack over a run of spaces or digits (possessive quantifiers, anchored starts),
context is checked in bounded windows, and JSON objects are found in one string-aware pass.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["parse_score", "parse_choice"]

_SCORE_KEYS = ("score", "rating", "similarity", "grade", "value", "result")
_GENERIC_KEYS = ("value", "result")  # verdict keys only when they hold a number
_CHOICE_KEYS = ("winner", "choice", "better", "verdict", "answer", "preferred")
_REASON_KEYS = ("rationale", "reason", "reasoning", "explanation", "justification", "comment")

# A number, never started inside another number or word (so a run of digits is tried once, not once per digit),
# with an optional explicit scale: "4/5", "8 / 10", "4 out of 5".
_NUM = r"(?<![\w.])(-?\d++(?:\.\d++)?(?:[eE][-+]?\d++)?)"
_SCALE = r"(?:\s*+(?:/|out\s++of(?!\w))\s*+(\d++(?:\.\d++)?)(?![\d/]|\.\d))?"
_NUMBER_TOKEN = re.compile(_NUM + _SCALE, re.IGNORECASE)
_NUMBER_ALONE = re.compile(r"(-?\d++(?:\.\d++)?(?:[eE][-+]?\d++)?)" + _SCALE, re.IGNORECASE)
# A label and what may sit between it and its number ("Score: **4", '"score": "4', "rating of 4"). Labels are
# found in one pass; a number is labelled when a label ends where it starts (possessive: no giving back).
_SCORE_LABEL = re.compile(r"(?<![a-z])(?:score|rating|grade|similarity)[\"']?\s*+(?:is|of|=|:)?\s*+[\"'*]*+\s*+",
                          re.IGNORECASE)
_WRAPPED_BEFORE = re.compile(r"(?:\*\*|\[\[)\s*+")
_WRAPPED_AFTER = re.compile(r"\s*+(?:\*\*|\]\])")
_UNLABELLED_SCALES = (5.0, 10.0, 100.0)  # "3/4 of the facts" is prose, "3/5" a score
_NOT_A_RATIONALE = re.compile(r"(?:final|score|rating|grade|similarity|winner|verdict|answer|is|of)|[\W_]",
                              re.IGNORECASE)
_CLOSING_TAIL = re.compile(r"[\s*_`.!)\]}\"']*+")

_CHOICE_TOKEN = re.compile(r"(?<![\w'])(A|B|[Tt][Ii][Ee])(?![\w'])")
_CHOICE_LABEL = re.compile(
    r"(?<![a-z])(?:winner|better|best|choice|verdict|prefer(?:red|ence)?|answer\s*+(?:is|:|=)|pick)\s*+(?:is|:|=)?"
    r"\s*+[\"'*(\[]*+\s*+(?:(?:answer|response|assistant)\s*+)?[\"'*(\[]*+\s*+", re.IGNORECASE)
_CHOICE_AFTER = re.compile(r"[\"'*)\]]*+\s++is\s++(?:the\s++)?(?:better|best|preferred|winner)", re.IGNORECASE)
_CHOICE_ALONE = re.compile(r"[\s*_`.!()\[\]\"']*+(A|B|tie)[\s*_`.!()\[\]\"']*+", re.IGNORECASE)


@dataclass
class _Mention:
    start: int
    end: int
    value: Any  # None: a statement that is not a valid value (off the scale, not a number)
    reason: str | None = None


def _ends(pattern: re.Pattern[str], text: str) -> set[int]:
    """Where each match of a context pattern (a label, an opening '**') ends, overlapping ones too ("better
    answer is A"): tried at every position, each try stops at the first character that cannot follow."""
    return {match.end(1) for match in _overlapping(pattern).finditer(text)}


def _overlapping(pattern: re.Pattern[str]) -> re.Pattern[str]:
    return re.compile(f"(?=({pattern.pattern}))", pattern.flags)


_OBJECT_CHARS = re.compile(r'[{}"\\\n:]')


def _objects(text: str) -> list[tuple[int, int, dict[str, Any]]]:
    """(start, end, object) of every top-level JSON object, in one pass that knows JSON strings.

    A raw newline cannot be inside a JSON string, so an unterminated quote abandons only its own object.
    Only objects with a colon are handed to the JSON parser ('{}' * 50000 costs nothing)."""
    found: list[tuple[int, int, dict[str, Any]]] = []
    depth, start, in_string, skip, colon = 0, -1, False, -1, False
    for match in _OBJECT_CHARS.finditer(text):
        index, char = match.start(), match.group()
        if index == skip:  # the character after a backslash in a string
            continue
        if depth == 0:
            if char == "{":
                depth, start, colon = 1, index, False
            continue
        if in_string:
            if char == "\\":
                skip = index + 1
            elif char == '"':
                in_string = False
            elif char == "\n":
                depth, in_string = 0, False
            continue
        if char == '"':
            in_string = True
        elif char == ":":
            colon = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0 and colon:
                try:
                    obj = json.loads(text[start:index + 1])
                except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
                    continue
                if isinstance(obj, dict):
                    found.append((start, index + 1, obj))
    return found


def _scaled(number: str, scale: str | None, low: float, high: float) -> float | None:
    try:
        value = float(number)
    except (OverflowError, ValueError):
        return None
    if scale is not None:
        top = float(scale)
        if top != high:
            if top <= low:
                return None
            value = low + (value - low) * (high - low) / (top - low)
    if not math.isfinite(value) or not low <= value <= high:
        return None
    return value


def _from_json_value(value: Any, low: float, high: float) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _scaled(str(value), None, low, high)
    if isinstance(value, str):
        match = _NUMBER_ALONE.fullmatch(value.strip())
        return _scaled(match.group(1), match.group(2), low, high) if match else None
    return None


def _numeric(value: Any) -> bool:
    if isinstance(value, str):
        return _NUMBER_ALONE.fullmatch(value.strip()) is not None
    return isinstance(value, int | float) and not isinstance(value, bool)


def _reason(obj: dict[str, Any]) -> str | None:
    return next((str(obj[k]) for k in _REASON_KEYS if obj.get(k)), None)


def _score_mentions(text: str, low: float, high: float) -> list[_Mention]:
    mentions: list[_Mention] = []
    verdict_spans: list[tuple[int, int]] = []
    for start, end, obj in _objects(text):
        lowered = {str(k).lower(): v for k, v in obj.items()}
        key = next((k for k in _SCORE_KEYS if k in lowered), None)
        if key is None or (key in _GENERIC_KEYS and not _numeric(lowered[key])):
            continue
        mentions.append(_Mention(start, end, _from_json_value(lowered[key], low, high), _reason(lowered)))
        verdict_spans.append((start, end))
    labels = _ends(_SCORE_LABEL, text)
    wrappers = _ends(_WRAPPED_BEFORE, text)
    span = 0
    for match in _NUMBER_TOKEN.finditer(text):
        while span < len(verdict_spans) and verdict_spans[span][1] <= match.start():
            span += 1
        if span < len(verdict_spans) and verdict_spans[span][0] <= match.start():
            continue  # inside a JSON verdict: the verdict is the statement
        number, scale = match.group(1), match.group(2)
        labelled = match.start() in labels
        wrapped = match.start() in wrappers and _WRAPPED_AFTER.match(text, match.end()) is not None
        if not (labelled or wrapped or (scale is not None and float(scale) in (*_UNLABELLED_SCALES, high))):
            continue  # a number in prose ("2 million people", "3/4 of the facts") is no score
        mentions.append(_Mention(match.start(), match.end(), _scaled(number, scale, low, high)))
    mentions.sort(key=lambda m: m.start)
    return mentions


def _closes(text: str, mentions: list[_Mention]) -> bool:
    """Is the last statement the judge's final verdict: nothing after it but punctuation, alone on its line?"""
    last = mentions[-1]
    if _CLOSING_TAIL.fullmatch(text, last.end) is None:
        return False
    line_start = text.rfind("\n", 0, last.start) + 1
    return len(mentions) < 2 or mentions[-2].end <= line_start


def _decide(text: str, mentions: list[_Mention]) -> _Mention | None:
    values = {m.value for m in mentions}
    if len(values) == 1:
        return mentions[-1]
    if _closes(text, mentions):
        return mentions[-1]
    return None  # statements disagree and none is clearly the last word: ambiguous


def _rationale(text: str, mention: _Mention) -> str | None:
    if mention.reason is not None:
        return mention.reason
    # the judge's whole answer is its rationale, unless it said nothing beyond the score ("**Score:** 4")
    rest = (text[:mention.start] + text[mention.end:])[:2000]
    if not _NOT_A_RATIONALE.sub("", rest):
        return None
    return " ".join(text[:2000].split())[:500]


def parse_score(text: Any, low: float = 1, high: float = 5) -> tuple[float | None, str | None]:
    """(score, rationale) from a judge's answer; score None when it states none, or none clearly, in [low, high]."""
    if not isinstance(text, str) or not text.strip():
        return None, None
    mentions = _score_mentions(text, low, high)
    if not mentions:
        bare = _NUMBER_ALONE.fullmatch(text.strip().strip("*.`\"' \n\t"))
        return (_scaled(bare.group(1), bare.group(2), low, high), None) if bare else (None, None)
    chosen = _decide(text, mentions)
    if chosen is None or chosen.value is None:
        return None, None
    return chosen.value, _rationale(text, chosen)


def _choice(value: Any) -> str | None:
    token = str(value).strip().upper() if isinstance(value, str) else ""
    return {"A": "A", "B": "B", "TIE": "tie"}.get(token)


def _choice_mentions(text: str) -> list[_Mention]:
    mentions: list[_Mention] = []
    verdict_spans: list[tuple[int, int]] = []
    for start, end, obj in _objects(text):
        lowered = {str(k).lower(): v for k, v in obj.items()}
        key = next((k for k in _CHOICE_KEYS if k in lowered and _choice(lowered[k])), None)
        if key is not None:
            mentions.append(_Mention(start, end, _choice(lowered[key]), _reason(lowered)))
            verdict_spans.append((start, end))
    labels = _ends(_CHOICE_LABEL, text)
    wrappers = _ends(_WRAPPED_BEFORE, text)
    span = 0
    for match in _CHOICE_TOKEN.finditer(text):
        while span < len(verdict_spans) and verdict_spans[span][1] <= match.start():
            span += 1
        if span < len(verdict_spans) and verdict_spans[span][0] <= match.start():
            continue
        if (match.start() in labels or _CHOICE_AFTER.match(text, match.end())
                or (match.start() in wrappers and _WRAPPED_AFTER.match(text, match.end()))):
            mentions.append(_Mention(match.start(), match.end(), _choice(match.group(1))))
    mentions.sort(key=lambda m: m.start)
    return mentions


def parse_choice(text: Any) -> tuple[str | None, str | None]:
    """('A' | 'B' | 'tie' | None, rationale) from a pairwise judge's answer, read like parse_score's."""
    if not isinstance(text, str) or not text.strip():
        return None, None
    mentions = _choice_mentions(text)
    if not mentions:
        alone = _CHOICE_ALONE.fullmatch(text.strip())
        return (_choice(alone.group(1)), None) if alone else (None, None)
    chosen = _decide(text, mentions)
    if chosen is None or chosen.value is None:
        return None, None
    return chosen.value, _rationale(text, chosen)
