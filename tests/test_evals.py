"""Evaluations: judge parsing, scorers, statistics, the runner (threads, Ctrl-C, MLflow run), compare, gate,
calibrate, %eval and `workbench eval --gate`."""

from __future__ import annotations

import _thread
import asyncio
import itertools
import math

import pandas as pd
import pytest

import workbench
from workbench.errors import ConfigError
from workbench.evals import stats
from workbench.evals.parsing import parse_choice, parse_score
from workbench.providers import fake

scorers = workbench.scorers


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture(autouse=True)
def mlflow_store(shared_store, monkeypatch):
    """One MLflow store for the module (creating one costs seconds); homes stay per test."""
    from workbench import config

    monkeypatch.setenv("WORKBENCH_TRACKING_URI", shared_store)
    config.reset_settings()
    return shared_store


def qa(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame({"input": [f"question {i}" for i in range(n)],
                         "expected": [f"question {i}" if i % 2 == 0 else f"other {i}" for i in range(n)]})


# -- judge answers ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, value", [
    ('{"score": 4, "rationale": "close"}', 4.0),
    ('Sure! Here is my grade:\n```json\n{"score": "5", "reason": "same"}\n```', 5.0),
    ("Score: 4", 4.0), ("4/5", 4.0), ("**4**", 4.0), ("4 out of 5", 4.0), ("3", 3.0),
    ("Rating: 2. The answer misses the point.", 2.0),
    ("Score: 7", None), ("0/5", None), ("I cannot grade this.", None), ("", None), (None, None),
    ('{"score": "high"}', None),
])
def test_parse_score(text, value):
    assert parse_score(text)[0] == value


def test_parse_score_keeps_rationale_and_choice():
    assert parse_score('{"score": 4, "rationale": "close"}') == (4.0, "close")
    for text, choice in [("A", "A"), ("[[B]]", "B"), ('{"winner": "b"}', "B"), ("Winner: A, clearly", "A"),
                         ("tie", "tie"), ("Answer B is better.", "B"), ("no idea", None)]:
        assert parse_choice(text)[0] == choice, text


# -- scorers and statistics -----------------------------------------------------------------------------------------


def test_deterministic_scorers():
    assert scorers.exact_match("q", "The Paris.", "paris") == 1.0
    assert scorers.exact_match("q", "Lyon", "Paris") == 0.0
    assert scorers.contains("q", "It is Paris, France", "paris") == 1.0
    assert scorers.json_valid("q", '```json\n{"a": 1}\n```') == 1.0 and scorers.json_valid("q", "{a:") == 0.0
    assert scorers.token_f1("q", "the cat sat", "a cat sat down") == pytest.approx(0.8)
    assert scorers.regex(r"\d+ km")("q", "about 42 km away") == 1.0
    assert math.isnan(scorers.exact_match("q", "x", None))  # nothing to compare with: no score, not a zero
    with pytest.raises(ConfigError, match="did you mean 'exact_match'"):
        scorers.as_scorer("exact_mach")
    with pytest.raises(ConfigError, match="needs arguments"):
        scorers.as_scorer("rubric")


def test_custom_scorers_return_floats_bools_tuples_and_never_stop_the_run():
    def shouty(input, output, expected):
        return output.isupper(), "all caps?"

    def broken(input, output, expected):
        raise RuntimeError("bug in my scorer")

    assert scorers.as_scorer(shouty).score(scorers.ScoreInput("q", "HI", None)).rationale == "all caps?"
    failed = scorers.as_scorer(broken).score(scorers.ScoreInput("q", "x", None))
    assert failed.failed and math.isnan(failed.value) and "bug in my scorer" in failed.raw
    assert scorers.as_scorer(lambda i, o, e: 0.25).score(scorers.ScoreInput("q", "x", None)).value == 0.25


def test_statistics():
    low, high = stats.bootstrap_ci([0, 1] * 50)
    assert low < 0.5 < high and high - low < 0.3
    assert stats.bootstrap_ci([float("nan")]) != stats.bootstrap_ci([1.0])  # (nan, nan) vs (1, 1)
    paired = stats.paired_bootstrap([1, 1, 1, 1, float("nan")], [0, 0, 1, 1, 0])
    assert paired.n == 4 and paired.wins == 2 and paired.ties == 2 and paired.mean_delta == 0.5
    assert stats.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert stats.weighted_kappa([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], labels=[1, 2, 3, 4, 5]) == pytest.approx(1.0)
    assert stats.weighted_kappa([1, 2, 3, 4, 5], [5, 4, 3, 2, 1], labels=[1, 2, 3, 4, 5]) < 0


# -- the runner ------------------------------------------------------------------------------------------------------


def test_evaluate_records_a_run_with_table_summary_and_traces():
    result = workbench.evaluate(qa(), "fake/echo", scorers=["exact_match", "token_f1"], concurrency=4, name="echo")
    assert len(result.table) == 6 and list(result.table["row"]) == list(range(6))
    assert result.mean("exact_match") == 0.5
    summary = result.summary.set_index("scorer")
    assert summary.loc["exact_match", "n"] == 6 and summary.loc["exact_match", "ci_low"] <= 0.5
    from workbench.evals.record import flush_records

    flush_records()
    import mlflow

    run = mlflow.get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "echo"
    assert run.data.params["dataset_digest"] == result.digest and run.data.params["model"] == "fake/echo"
    assert run.data.metrics["exact_match/mean"] == 0.5
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id, "eval")}
    assert {"eval/table.json", "eval/summary.csv", "eval/scores.png", "eval/meta.json"} <= artifacts
    assert run.inputs.dataset_inputs[0].dataset.digest == result.digest[:12]
    back = workbench.EvalResult.from_run(result.run_id)
    assert back.models == ["fake/echo"] and list(back.table["exact_match"]) == list(result.table["exact_match"])
    from workbench.tracing import get_trace

    assert get_trace(result.table["trace_id"][0]).run_id == result.run_id  # every call's trace links to the run


def test_judge_answers_unparseable_are_nan_counted_and_left_out_of_means():
    fake.enqueue(['{"score": 5}', "Score: 3", "4/5", "I refuse", "**2**", "banana"])
    result = workbench.evaluate(qa(), "fake/echo", scorers=["similarity"], judge="fake/script", concurrency=1)
    table = result.table
    assert list(table["similarity"].isna()) == [False, False, False, True, False, True]
    assert list(table["similarity_raw"].dropna()) == ["I refuse", "banana"]
    assert result.parse_failures == 2 and result.mean("similarity") == pytest.approx((5 + 3 + 4 + 2) / 4)
    assert result.summary["parse_failures"].iloc[0] == 2 and result.judge == "fake/script"
    assert "2 judge answer(s) could not be read" in result._repr_html_()


def test_pairwise_compares_models_in_random_order():
    fake.enqueue(["A"] * 6)  # a judge that always says "A": position bias the random order must cancel
    result = workbench.evaluate(qa(), models=["fake/echo", "fake/slow?ms=1"], scorers=[scorers.pairwise()],
                                judge="fake/script", concurrency=1)
    second = result.table[result.table["model"] == "fake/slow?ms=1"]["pairwise"]
    assert set(second) == {0.0, 1.0}  # sometimes A was this answer, sometimes the other one
    first = result.table[result.table["model"] == "fake/echo"]["pairwise"]
    assert list(first) == [1 - v for v in second]
    with pytest.raises(ConfigError, match="pick one"):
        result.mean("pairwise")


def test_evaluate_from_a_running_event_loop_and_with_a_prompt_template():
    async def cell():  # what Jupyter does: the cell's code runs while an event loop is running
        assert asyncio.get_running_loop()
        return workbench.evaluate(qa(4), "fake/echo", prompt="Answer: {input}", concurrency=4, progress=False)

    result = asyncio.run(cell())
    assert list(result.table["output"]) == [f"Answer: question {i}" for i in range(4)]


def test_ctrl_c_keeps_scored_rows_and_marks_the_run_killed():
    data = qa(60)
    scored = itertools.count(1)

    def ctrl_c_after_five_rows(input, output, expected):
        # a real KeyboardInterrupt in the caller's thread, once rows are flowing (a timer could fire while
        # the store is still being created on a slow machine, where libraries may swallow it)
        if next(scored) == 5:
            _thread.interrupt_main()
        return 1.0

    result = workbench.evaluate(data, "fake/slow?ms=100", scorers=["exact_match", ctrl_c_after_five_rows],
                                concurrency=2, cache=False, progress=False)
    assert result.interrupted and 0 < len(result.table) < 60
    assert result.table["exact_match"].notna().all()  # every kept row is fully scored
    from workbench.evals.record import flush_records

    flush_records()
    import mlflow

    assert mlflow.get_run(result.run_id).info.status == "KILLED"


def test_wait_false_returns_a_handle_that_can_be_cancelled():
    handle = workbench.evaluate(qa(40), "fake/slow?ms=50", concurrency=1, cache=False, wait=False)
    assert handle.status == "running"
    handle.cancel()
    result = handle.wait(30)
    assert result.interrupted and len(result.table) < 40 and handle.status == "cancelled"


def test_failed_calls_are_rows_with_errors_not_a_stopped_run():
    result = workbench.evaluate(qa(3), "fake/fail", concurrency=3, progress=False)
    assert result.table["error"].str.contains("ProviderError").all()
    assert result.summary["n"].eq(0).all()


def test_bad_arguments_are_refused_before_any_call():
    with pytest.raises(ConfigError, match="concurrency"):
        workbench.evaluate(qa(), "fake/echo", concurrency=0)
    with pytest.raises(ConfigError, match="only \\{input\\} is filled"):
        workbench.evaluate(qa(), "fake/echo", prompt="{input} and {context}")
    with pytest.raises(workbench.WorkbenchError, match="no golden dataset 'nope'"):
        workbench.evaluate("nope", "fake/echo")


# -- compare, gate, calibrate --------------------------------------------------------------------------------------


def test_compare_and_gate_pair_rows_and_read_runs_back():
    data = pd.DataFrame({"input": [f"q{i}" for i in range(20)], "expected": [f"q{i}" for i in range(20)]})
    good = workbench.evaluate(data, "fake/echo", progress=False)
    fake.enqueue(["wrong"] * 20)
    bad = workbench.evaluate(data, "fake/script", concurrency=1, progress=False)
    comparison = workbench.compare(good, bad)
    row = comparison.metrics.set_index("metric").loc["exact_match"]
    assert row["losses"] == 20 and row["delta"] == -1.0 and len(comparison.table) == 20
    assert comparison.plot() is not None
    failed = workbench.gate(bad, good.run_id, metric="exact_match")  # a run id works as well as a result
    assert not failed and failed.ci_high == -1.0 and "below min_delta" in failed.reason
    same = workbench.gate(good, good, metric="exact_match")
    assert same.passed and bool(same) and same.n == 20
    assert workbench.gate(bad, good, metric="exact_match", min_delta=-1.0).passed
    with pytest.raises(ConfigError, match="has no 'similarity' scores"):
        workbench.gate(good, bad)


def test_calibrate_reports_agreement_and_logs_a_run():
    human = [5, 4, 1, 2, 5, 3, 1, 4]
    fake.enqueue([f'{{"score": {s}}}' for s in human[:6]] + ["whatever", "Score: 9"])
    data = pd.DataFrame({"input": [f"q{i}" for i in range(8)], "output": [f"a{i}" for i in range(8)],
                         "expected": [f"e{i}" for i in range(8)], "human_score": human})
    result = workbench.calibrate("fake/script", data, concurrency=1)
    assert result.n == 6 and result.parse_failures == 2
    assert result.spearman == pytest.approx(1.0) and result.kappa == pytest.approx(1.0)
    assert not result.usable and "NOT a usable judge" in result.verdict  # a quarter unreadable
    assert result.confusion.loc[5, 5] == 2 and result.run_id
    import mlflow

    assert mlflow.get_run(result.run_id).data.metrics["weighted_kappa"] == pytest.approx(1.0)


# -- %eval and the CLI -------------------------------------------------------------------------------------------------


def test_eval_magic_and_cli_gate(tmp_path, capsys, ipython_shell):
    from IPython.utils.capture import capture_output

    from workbench.cli import main

    shell = ipython_shell
    shell.run_line_magic("load_ext", "workbench")
    try:
        workbench.golden("magic-qa").add("hello", "hello")
        with capture_output() as captured:
            shell.run_cell("%eval magic-qa -m fake/echo --scorer exact_match,token_f1", store_history=True)
        assert shell.user_ns["_eval"].mean("exact_match") == 1.0
        html = [o.data.get("text/html", "") for o in captured.outputs]
        assert any("Evaluation of magic-qa" in h for h in html)
    finally:
        shell.run_line_magic("unload_ext", "workbench")
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(f'{{"input": "q{i}", "expected": "q{i}"}}\n' for i in range(10)), encoding="utf-8")
    assert main(["eval", "--dataset", str(path), "--model", "fake/echo", "--gate", "--threshold", "0.9"]) == 0
    baseline = capsys.readouterr().out.split("run_id ")[1].split()[0]
    fake.enqueue(["nope"] * 10)
    code = main(["eval", "--dataset", str(path), "-m", "fake/script", "-c", "1", "--baseline", baseline, "--gate"])
    assert code == 1 and "FAIL: exact_match delta" in capsys.readouterr().out
    assert main(["eval", "--dataset", str(path), "-m", "fake/echo", "--gate"]) == 2  # a usage error


# -- QA pass: bad arguments fail before any row is run -------------------------------------------------------------


@pytest.mark.parametrize("kwargs,needle", [
    ({"models": 5, "model": None}, "models=5"), ({"params": [1]}, "params=[1]"),
    ({"params": {"temperature": 5}}, "temperature=5"), ({"judge": "nosuch/x"}, "'nosuch/x'"),
    ({"name": 5}, "name=5"), ({"experiment": 5}, "experiment=5"),
    ({"prompt": "Answer {question}"}, "uses {question}"),
])
def test_bad_evaluate_arguments_fail_before_any_call(kwargs, needle):
    with pytest.raises(workbench.WorkbenchError) as caught:
        workbench.evaluate(qa(2), **{"model": "fake/echo", "progress": False, **kwargs})
    assert needle in str(caught.value) and "\n" not in str(caught.value)
    assert len(workbench.calls()) == 0


def test_a_scorer_that_raises_says_why_in_its_rationale():
    def boom(input, output, expected):
        raise RuntimeError("kaboom")

    result = workbench.evaluate(qa(2), "fake/echo", scorers=[boom], progress=False)
    assert result.table["boom_failed"].all()
    assert result.table["boom_rationale"].str.contains("RuntimeError: kaboom").all()


@pytest.mark.parametrize("judge,data,needle", [
    ("fake/echo", 5, "data=5"), ("fake/echo", "/no/such.csv", "no file"), ("similarity", [], "'similarity'"),
])
def test_calibrate_wrong_arguments_are_one_line(judge, data, needle):
    with pytest.raises(workbench.WorkbenchError) as caught:
        workbench.calibrate(judge, data)
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_a_plot_that_fails_is_said_and_the_rest_of_the_run_is_saved(monkeypatch):
    """Issue 11 item 10: the scores plot failing was swallowed whole; now one warning names what was not saved."""
    from workbench.evals import record

    def broken_plot(*args, **kwargs):
        raise ValueError("no finite scores to plot")

    monkeypatch.setattr(record, "plot_result", broken_plot)
    with pytest.warns(record.EvalWarning, match=r"eval/scores.png was not saved.*no finite scores"):
        result = workbench.evaluate(qa(), "fake/echo", scorers=["exact_match"], name="plotless")
        record.flush_records()
    import mlflow

    run = mlflow.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id, "eval")}
    assert {"eval/table.json", "eval/summary.csv", "eval/meta.json"} <= artifacts
    assert "eval/scores.png" not in artifacts
