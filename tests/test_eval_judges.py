"""Judge noise: repeated judgings (each cached), self-agreement, and scores read from token logprobs."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import workbench
from workbench.errors import ConfigError
from workbench.evals.judge_logprobs import digit_prompt, expected_score
from workbench.providers import fake

pytestmark = pytest.mark.usefixtures("module_mlflow_store")


def data(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({"input": [f"q{i}" for i in range(n)], "expected": [f"q{i}" for i in range(n)]})


def test_judge_repeats_average_measure_agreement_and_rerun_free():
    replies = ['{"score": 5}', "5", "Score: 5",  # row 0 agrees with itself
               "4", "2", "3",  # row 1 does not
               "banana", "4", "4"]  # row 2: one judging unreadable
    fake.enqueue(replies)
    result = workbench.evaluate(data(), "fake/echo", scorers=["similarity"], judge="fake/script", concurrency=1,
                                judge_repeats=3, progress=False)
    table = result.table.set_index("input")
    assert list(table["similarity"]) == [5.0, 3.0, 4.0]
    assert list(table["similarity_k"]) == [3, 3, 2] and table.loc["q1", "similarity_sd"] == pytest.approx(1.0)
    assert json.loads(table.loc["q2", "similarity_repeats"]) == [None, 4.0, 4.0]
    noise = result.judge_noise.iloc[0]
    assert noise["repeats"] == 3 and noise["agreement"] == pytest.approx(2 / 3)
    assert noise["within_row_sd"] == pytest.approx(1 / 3)
    assert "Judge noise (3 judgings per row" in result._repr_html_()
    # each judging is its own cache entry (its own seed): a rerun calls no judge and gives the same numbers
    again = workbench.evaluate(data(), "fake/echo", scorers=["similarity"], judge="fake/script", concurrency=1,
                               judge_repeats=3, progress=False)
    assert list(again.table["similarity"]) == [5.0, 3.0, 4.0]
    calls = workbench.calls()
    judged = calls[calls["model"] == "fake/script"]
    assert len(judged) == 18 and judged["cache_hit"].sum() == 9
    import mlflow

    run = mlflow.get_run(result.run_id)
    assert run.data.params["judge_repeats"] == "3"
    assert run.data.metrics["similarity/judge_agreement"] == pytest.approx(2 / 3)
    back = workbench.EvalResult.from_run(result.run_id)
    assert back.judge_repeats == 3 and back.judge_noise.iloc[0]["agreement"] == pytest.approx(2 / 3)


def test_judge_repeats_and_mode_are_checked():
    with pytest.raises(ConfigError, match="judge_repeats=0"):
        workbench.evaluate(data(), "fake/echo", judge_repeats=0)
    with pytest.raises(ConfigError, match="judge_mode='vibes'"):
        workbench.evaluate(data(), "fake/echo", judge_mode="vibes")


def test_expected_score_from_logprobs():
    import math

    top = [("4", 0.6), (" 5", 0.2), ("The", 0.15), ("2", 0.05)]
    tokens = [{"token": "4", "logprob": math.log(0.6),
               "top_logprobs": [{"token": token, "logprob": math.log(p)} for token, p in top]}]
    value, note = expected_score(tokens)
    assert value == pytest.approx((4 * 0.6 + 5 * 0.2 + 2 * 0.05) / 0.85) and "85%" in note
    assert expected_score([{"token": "x", "logprob": 0.0, "top_logprobs": [{"token": "x", "logprob": 0.0}]}])[0] is None
    assert expected_score(None)[0] is None
    prompt = digit_prompt('Rate it.\nReply with JSON only: {"score": 1}')
    assert prompt.endswith("single digit from 1 to 5 and nothing else.") and "JSON" not in prompt


def test_logprobs_mode_on_a_provider_without_logprobs_says_so_per_row():
    result = workbench.evaluate(data(2), "fake/echo", scorers=["similarity"], judge="fake/echo",
                                judge_mode="logprobs", progress=False)
    assert result.table["similarity_failed"].all()
    assert result.table["similarity_raw"].str.contains("returned no logprobs").all()


@pytest.mark.slow
def test_the_local_model_returns_logprobs_and_the_judge_reads_them():
    prompt = "Is Paris the capital of France? Reply with one digit from 1 (no) to 5 (yes)."
    response = workbench.complete(prompt, "local/smollm2", max_tokens=1, logprobs=True, top_logprobs=5)
    first = response.logprobs[0]
    top = first["top_logprobs"]
    assert len(top) == 5 and top[0]["logprob"] >= top[1]["logprob"]
    assert sum(__import__("math").exp(t["logprob"]) for t in first["top_logprobs"]) <= 1.0 + 1e-6
    again = workbench.complete(prompt, "local/smollm2", max_tokens=1, logprobs=True, top_logprobs=5)
    assert again.cache_hit and again.logprobs == response.logprobs  # the logprobs are cached with the answer
    labelled = pd.DataFrame({"input": ["Capital of France?", "Capital of Japan?"], "expected": ["Paris", "Tokyo"],
                             "output": ["Paris", "Kyoto"], "human_score": [5, 1]})
    calibration = workbench.calibrate("local/smollm2", labelled, judge_mode="logprobs", concurrency=1)
    assert calibration.parse_failures == 0 and calibration.n == 2 and calibration.judge_mode == "logprobs"
    assert calibration.table["judge"].between(1, 5).all()
