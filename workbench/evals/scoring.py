"""Scorers, exposed as `workbench.scorers`: deterministic ones and LLM judges.

By name: `exact_match`, `contains`, `json_valid`, `token_f1`, `similarity` (the seed's 1-5 judge against the
expected answer). Parameterized: `regex(pattern)`, `rubric(criteria)`, `pairwise()`. Any function
`(input, output, expected) -> float | bool | (score, rationale)` is a scorer too.

A judge's unparseable or out-of-range answer is NaN with its raw text kept: counted, left out of means,
never an exception. The bundled 135M model is no usable judge (see `workbench.calibrate`).
"""

from __future__ import annotations

import difflib
import json
import math
import random
import re
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from workbench import config
from workbench.errors import ConfigError, WorkbenchError
from workbench.evals import judge_logprobs
from workbench.evals.concurrency import limited
from workbench.evals.parsing import parse_choice, parse_score
from workbench.gateway import client

__all__ = ["Score", "Scorer", "ScoreInput", "exact_match", "contains", "json_valid", "token_f1", "similarity",
           "regex", "rubric", "pairwise", "as_scorer", "ScorerSpec", "BUILTIN", "normalize", "judge_call",
           "SIMILARITY_PROMPT", "RUBRIC_PROMPT", "PAIRWISE_PROMPT"]

NAN = float("nan")
JUDGE_MAX_TOKENS = 200
LOCAL_JUDGE_MAX_TOKENS = 24  # a 135M model rambles; a short answer is all it can give (and it is no judge)
REPEAT_TEMPERATURE = 0.7  # judge repeats sample, or k greedy judgings would only repeat one answer


@dataclass
class Score:
    value: float = NAN
    rationale: str | None = None
    raw: str | None = None  # the judge's answer when it could not be read
    failed: bool = False  # unparseable, out of range, or the scorer/judge raised
    cost_usd: float = 0.0
    trace_id: str | None = None


@dataclass
class ScoreInput:
    input: str
    output: str
    expected: str | None
    judge: str | None = None
    key: str = ""  # the row's stable key (seeds the pairwise order)
    other: str | None = None  # pairwise: the answer this one is compared with
    other_label: str = "expected answer"
    repeat: int = 0  # judge repeats: which judging of this row (its own seed, so its own cache entry)
    sampled: bool = False  # judge repeats: the judge samples (temperature REPEAT_TEMPERATURE) instead of greedy
    mode: str = "parse"  # "parse" the judge's answer, or read the score tokens' "logprobs"


@dataclass(frozen=True)
class Scorer:
    """A named scoring function. kind: 'deterministic', 'judge' or 'pairwise'; [low, high] its scale."""

    name: str
    fn: Callable[[ScoreInput], Score] = field(repr=False)
    kind: str = "deterministic"
    low: float = 0.0
    high: float = 1.0

    def score(self, item: ScoreInput) -> Score:
        try:
            return self.fn(item)
        except WorkbenchError as exc:
            return Score(NAN, raw=str(exc), failed=True)
        except Exception as exc:  # a user's scorer bug marks the row, never stops the run
            error = f"{type(exc).__name__}: {exc}"
            return Score(NAN, rationale=f"the scorer raised {error}"[:500], raw=error, failed=True)

    def __call__(self, input: str, output: str, expected: str | None = None, *, judge: str | None = None) -> float:
        """Score one example by hand: `scorers.token_f1('q', 'the answer', 'an answer')`."""
        return self.score(ScoreInput(input, output, expected, judge)).value


# -- deterministic -------------------------------------------------------------------------------------------

_PUNCT = str.maketrans("", "", string.punctuation)


# What a scorer may be given as: a built-in's name, a Scorer, or a function (input, output, expected) -> score.
ScorerSpec = str | Scorer | Callable[..., object]


def normalize(text: Any) -> str:
    """Lowercase, no punctuation or articles, single spaces: 'The Paris.' and 'paris' match."""
    words = str(text or "").casefold().translate(_PUNCT).split()
    return " ".join(w for w in words if w not in ("a", "an", "the"))


def _needs_expected(item: ScoreInput) -> Score | None:
    if item.expected is None:
        return Score(NAN, rationale="no expected answer")
    return None


def _exact(item: ScoreInput) -> Score:
    return _needs_expected(item) or Score(float(normalize(item.output) == normalize(item.expected)))


def _contains(item: ScoreInput) -> Score:
    missing = _needs_expected(item)
    if missing:
        return missing
    expected = normalize(item.expected)
    return Score(float(bool(expected) and f" {expected} " in f" {normalize(item.output)} "))


def _json_valid(item: ScoreInput) -> Score:
    text = item.output.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, re.S | re.I)
    try:
        json.loads(fenced.group(1) if fenced else text)
    except (ValueError, TypeError) as exc:
        return Score(0.0, rationale=f"not JSON: {exc}"[:200])
    return Score(1.0)


def _token_f1(item: ScoreInput) -> Score:
    missing = _needs_expected(item)
    if missing:
        return missing
    got, want = normalize(item.output).split(), normalize(item.expected).split()
    if not got or not want:
        return Score(float(got == want))
    common = sum((Counter(got) & Counter(want)).values())
    if common == 0:
        return Score(0.0)
    precision, recall = common / len(got), common / len(want)
    return Score(2 * precision * recall / (precision + recall))


exact_match = Scorer("exact_match", _exact)
contains = Scorer("contains", _contains)
json_valid = Scorer("json_valid", _json_valid)
token_f1 = Scorer("token_f1", _token_f1)


def regex(pattern: str, *, flags: int = re.I, name: str | None = None) -> Scorer:
    """1.0 when the output matches `pattern` (re.search), else 0.0."""
    try:
        compiled = re.compile(pattern, flags)
    except re.error as exc:
        raise ConfigError(f"regex({pattern!r}): {exc}; escape special characters with re.escape()") from None
    return Scorer(name or "regex", lambda item: Score(float(bool(compiled.search(item.output or "")))))


# -- LLM judges ----------------------------------------------------------------------------------------------

SIMILARITY_PROMPT = """You grade a generated answer against a perfect answer.

Question: <<input>>
Perfect answer: <<expected>>
Generated answer: <<output>>

Compare the generated answer to the perfect answer. Rate similarity 1-5 (5: same meaning and facts, 3: partly
right, 1: wrong or unrelated). Reply with JSON only: {"score": <1-5>, "rationale": "<one sentence>"}"""

RUBRIC_PROMPT = """You grade an answer on these criteria: <<criteria>>

Question: <<input>>
Answer: <<output>>

Rate how well the answer meets the criteria, 1-5 (5: fully, 1: not at all). Reply with JSON only:
{"score": <1-5>, "rationale": "<one sentence>"}"""

PAIRWISE_PROMPT = """Two answers to the same question. Which one is better: more correct, complete and helpful?

Question: <<input>>

Answer A: <<a>>

Answer B: <<b>>

Reply with JSON only: {"winner": "A" or "B" or "tie", "rationale": "<one sentence>"}"""


def _fill(template: str, **values: Any) -> str:
    # <<name>> placeholders: answers full of {braces} (JSON, code) must not break the template
    for key, value in values.items():
        template = template.replace(f"<<{key}>>", "" if value is None else str(value))
    return template


def _judge_model(item: ScoreInput) -> str:
    if item.judge:
        return item.judge
    return config.settings().effective_judge_model


def judge_call(model: str, prompt: str, *, repeat: int = 0, sampled: bool = False) -> tuple[str, float, str | None]:
    """(answer text, cost, trace id) of one judge call: greedy and short; a sampled repeat has its own seed."""
    limit = LOCAL_JUDGE_MAX_TOKENS if model.startswith("local/") else JUDGE_MAX_TOKENS
    settings: dict[str, Any] = {"temperature": REPEAT_TEMPERATURE, "seed": repeat} if sampled else {"temperature": 0}
    response = limited(lambda: client.complete(prompt, model, max_tokens=limit, tags={"workbench.role": "judge"},
                                               **settings))
    return response.text, response.cost_usd or 0.0, response.trace_id


def _graded(model: str, prompt: str, item: ScoreInput | None = None) -> Score:
    if item is not None and item.mode == "logprobs":
        value, note, cost, trace_id = judge_logprobs.judge_by_logprobs(model, prompt)
        if value is None:
            return Score(NAN, raw=note, failed=True, cost_usd=cost, trace_id=trace_id)
        return Score(value, rationale=note, cost_usd=cost, trace_id=trace_id)
    try:
        text, cost, trace_id = judge_call(model, prompt, repeat=item.repeat if item else 0,
                                          sampled=bool(item and item.sampled))
    except WorkbenchError as exc:
        return Score(NAN, raw=f"judge {model} failed: {exc}"[:1000], failed=True)
    value, rationale = parse_score(text, 1, 5)
    if value is None:
        return Score(NAN, raw=text[:2000], failed=True, cost_usd=cost, trace_id=trace_id)
    return Score(value, rationale=rationale, cost_usd=cost, trace_id=trace_id)


def _similarity(item: ScoreInput) -> Score:
    missing = _needs_expected(item)
    if missing:
        return missing
    prompt = _fill(SIMILARITY_PROMPT, input=item.input, expected=item.expected, output=item.output)
    return _graded(_judge_model(item), prompt, item)


similarity = Scorer("similarity", _similarity, kind="judge", low=1.0, high=5.0)


def rubric(criteria: str, *, name: str = "rubric") -> Scorer:
    """An LLM judge scoring 1-5 on free criteria, e.g. rubric('polite, cites a source, under 50 words')."""
    if not isinstance(criteria, str) or not criteria.strip():
        raise ConfigError("rubric() needs criteria, e.g. rubric('answers the question and is polite')")

    def run(item: ScoreInput) -> Score:
        prompt = _fill(RUBRIC_PROMPT, criteria=criteria.strip(), input=item.input, output=item.output)
        return _graded(_judge_model(item), prompt, item)

    return Scorer(name, run, kind="judge", low=1.0, high=5.0)


def pairwise(*, name: str = "pairwise", seed: int = 0) -> Scorer:
    """The judge picks the better of two answers (1 win, 0.5 tie, 0 loss). With several models each is compared
    with the first; with one, with the expected answer. A and B are swapped at random (seeded per row), so a
    judge's preference for the first position cancels out over the dataset."""

    def run(item: ScoreInput) -> Score:
        if item.other is None:
            return Score(NAN, rationale="nothing to compare with")
        swapped = random.Random(f"{seed}:{item.key}").random() < 0.5  # noqa: S311 - a fair coin, not a secret
        a, b = (item.other, item.output) if swapped else (item.output, item.other)
        model = _judge_model(item)
        prompt = _fill(PAIRWISE_PROMPT, input=item.input, a=a, b=b)
        try:
            text, cost, trace_id = judge_call(model, prompt, repeat=item.repeat, sampled=item.sampled)
        except WorkbenchError as exc:
            return Score(NAN, raw=f"judge {model} failed: {exc}"[:1000], failed=True)
        choice, rationale = parse_choice(text)
        if choice is None:
            return Score(NAN, raw=text[:2000], failed=True, cost_usd=cost, trace_id=trace_id)
        ours = "B" if swapped else "A"
        value = 0.5 if choice == "tie" else float(choice == ours)
        where = f"this answer was {ours}, vs the {item.other_label}"
        return Score(value, rationale=f"{where}; {rationale}" if rationale else where, cost_usd=cost,
                     trace_id=trace_id)

    return Scorer(name, run, kind="pairwise", low=0.0, high=1.0)


# -- resolving what the user passed ----------------------------------------------------------------------------

BUILTIN: dict[str, Scorer] = {s.name: s for s in (exact_match, contains, json_valid, token_f1, similarity)}
_FACTORIES = {"regex": regex, "rubric": rubric, "pairwise": pairwise}


def _coerce(result: Any) -> Score:
    if isinstance(result, Score):
        return result
    rationale = None
    if isinstance(result, tuple) and len(result) == 2:
        result, rationale = result
    if isinstance(result, bool):
        return Score(float(result), rationale=None if rationale is None else str(rationale))
    if result is None:
        return Score(NAN, rationale=None if rationale is None else str(rationale), failed=True, raw="returned None")
    try:
        value = float(result)
    except (TypeError, ValueError):
        return Score(NAN, raw=f"returned {result!r:.200}, not a number", failed=True)
    return Score(value, rationale=None if rationale is None else str(rationale), failed=math.isnan(value))


def as_scorer(spec: ScorerSpec) -> Scorer:
    """A Scorer from a built-in name, a Scorer, or a function (input, output, expected) -> score."""
    if isinstance(spec, Scorer):
        return spec
    if isinstance(spec, str):
        found = BUILTIN.get(spec.strip())
        if found is not None:
            return found
        if spec.strip() == "pairwise":
            return pairwise()
        if spec.strip() in _FACTORIES:
            raise ConfigError(f"scorer {spec!r} needs arguments: use workbench.scorers.{spec.strip()}(...)")
        close = difflib.get_close_matches(spec, list(BUILTIN), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"unknown scorer {spec!r}: {hint}built-in scorers are {', '.join(BUILTIN)}; "
                          "or pass a function (input, output, expected) -> score")
    if callable(spec):
        name = getattr(spec, "__name__", None) or type(spec).__name__
        name = "custom" if name == "<lambda>" else name
        return Scorer(name, lambda item: _coerce(spec(item.input, item.output, item.expected)))
    raise ConfigError(f"scorer {spec!r:.80} is neither a name, a Scorer nor a function (input, output, expected)")
