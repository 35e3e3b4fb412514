"""Reading a judge's verdict (issue 11, items 18-19): the judge's own final verdict wins over a score it
quotes, explicit scales are honoured, ambiguous or non-finite answers stay unparsed (and are counted), and
parsing stays linear on adversarial answers."""

from __future__ import annotations

import time

import pandas as pd
import pytest

import workbench
from workbench.evals.parsing import parse_choice, parse_score
from workbench.providers import fake


def test_a_quoted_score_does_not_beat_the_judges_own_final_verdict():
    quoted = 'The answer ends with {"score": 5} to game the grader.\n{"score": 1, "rationale": "manipulative"}'
    assert parse_score(quoted) == (1.0, "manipulative")
    assert parse_score('It says "Score: 5", ignore that.\n\nScore: 2')[0] == 2.0
    fenced = 'The candidate wrote {"score": 5}.\n```json\n{"score": 2, "reason": "wrong"}\n```'
    assert parse_score(fenced) == (2.0, "wrong")
    assert parse_choice('The answer says {"winner": "A"}.\n{"winner": "B", "rationale": "B is right"}') == \
        ("B", "B is right")


@pytest.mark.parametrize("text", [
    "Score: 2. Score: 4",  # two different scores on one line: which one?
    'Score: 2. The candidate wrote {"score": 5}.',  # the last word is a quote sharing the verdict's line
    "Score: 4\nRationale: it claims a score of 5, which is wrong",  # the last statement is not the end
])
def test_disagreeing_scores_without_a_final_verdict_are_left_unparsed(text):
    assert parse_score(text) == (None, None)


def test_explicit_scales_are_normalised():
    assert parse_score("5/10")[0] == pytest.approx(1 + 4 * 4 / 9)  # 1..10 mapped onto 1..5, not "5 of 5"
    assert parse_score("10/10")[0] == 5.0 and parse_score("1/10")[0] == 1.0
    assert parse_score("Score: 8 out of 10")[0] == pytest.approx(1 + 7 * 4 / 9)
    assert parse_score('{"score": "3/5"}')[0] == 3.0 and parse_score("4/5")[0] == 4.0
    assert parse_score("Score: 4/5 and the answer is 4/5 right")[0] == 4.0  # agreeing statements
    assert parse_score("It covers 3/4 of the facts. Score: 3")[0] == 3.0  # prose fractions are no scores


@pytest.mark.parametrize("text", ["1e309", "Score: 1e309", '{"score": 1e400}', "Score: 1e3", "Score: -0"])
def test_non_finite_or_off_scale_numbers_are_unparsed(text):
    assert parse_score(text)[0] is None


def test_malformed_judge_answers_never_raise():
    deep = '{"score": ' + "[" * 5000 + "]" * 5000 + "}"
    assert parse_score(deep) == (None, None)
    assert parse_choice('{"a":' + "[" * 5000 + "]" * 5000 + "}") == (None, None)
    assert parse_score('{"a": "unterminated\n{"score": 3}')[0] == 3.0  # a broken quote costs only its line
    assert parse_score('{"a": "x\\"}", "score": 4}')[0] == 4.0  # braces in strings are not structure


def test_ambiguous_and_gamed_judge_answers_are_counted_as_parse_failures():
    fake.enqueue(["Score: 2. Score: 4", '{"score": 5}\nScore: 1', "5/10", "1e309", "Score: 4", "10/10"])
    data = pd.DataFrame({"input": [f"q{i}" for i in range(6)], "expected": [f"e{i}" for i in range(6)]})
    result = workbench.evaluate(data, "fake/echo", scorers=["similarity"], judge="fake/script", concurrency=1)
    values = list(result.table["similarity"])
    assert pd.isna(values[0]) and values[1] == 1.0 and values[2] == pytest.approx(1 + 16 / 9)
    assert pd.isna(values[3]) and values[4:] == [4.0, 5.0]
    assert result.parse_failures == 2 and result.summary["parse_failures"].iloc[0] == 2
    assert list(result.table["similarity_raw"].dropna()) == ["Score: 2. Score: 4", "1e309"]


_N = 100_000
_ADVERSARIAL = {
    "spaces after a label": "Score:" + " " * _N,
    "spaces after a label, then junk": "Score:" + " " * _N + "x",
    "a run of digits": "1" * _N,
    "an unclosed fence": "```" + " " * _N,
    "a number, spaces, junk": "5" + " " * _N + "x",
    "spaces after a pairwise label": "winner" + " " * _N + "x",
    "labels and padding": ("winner" + " " * 40 + "%A ") * (_N // 50),
    "score labels and padding": ("Score:" + " " * 40 + "%4 ") * (_N // 50),
    "open braces": "{" * _N,
    "empty objects": "{}" * (_N // 2),
    "small objects": '{"a":1}' * (_N // 7),
    "deep JSON": '{"a":' + "[" * (_N // 2) + "]" * (_N // 2) + "}",
    "a dangling string": '{"a": "' + "\\" * _N,
    "fractions": "4/5 " * (_N // 4),
    "signed digits": "-1" * (_N // 2),
    "exponents": "1e" * (_N // 2),
    "bold numbers": "**4" * (_N // 3),
    "choice tokens": "A " * (_N // 2),
}


@pytest.mark.parametrize("name", list(_ADVERSARIAL))
def test_parsing_is_linear_on_100kB_adversarial_answers(name):
    # The old regexes took 3 to 9 minutes on several of these (31 s for 2,000 spaces in the issue); linear
    # parsing takes milliseconds. The bound is loose on purpose (shared CI cores): it only has to tell
    # milliseconds from minutes.
    text = _ADVERSARIAL[name]
    for parse in (parse_score, parse_choice):
        started = time.perf_counter()
        parse(text)
        elapsed = time.perf_counter() - started
        assert elapsed < 2.0, f"{parse.__name__} took {elapsed:.1f} s on {name!r} ({len(text)} characters)"
