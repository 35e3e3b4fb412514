"""Signals: feedback as MLflow assessments, the journal across processes, training-data exports, the bar."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import workbench
from workbench.errors import ConfigError, NotFoundError, WorkbenchError


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture(autouse=True)
def mlflow_store(shared_store, monkeypatch):
    from workbench import config

    monkeypatch.setenv("WORKBENCH_TRACKING_URI", shared_store)
    monkeypatch.setenv("WORKBENCH_TRACING", "on")  # feedback lives on traces in the store
    config.reset_settings()
    return shared_store


def _assessments(trace_id):
    from workbench.tracking.backend import backend, current_uri

    info = backend(current_uri()).client.get_trace(trace_id).info
    return {(a.name, json.dumps(getattr(a, "value", None))) for a in info.assessments}


def test_feedback_is_stored_as_assessments_on_the_trace():
    response = workbench.complete("What is 2+2?", "fake/echo")
    record = workbench.feedback(response, thumbs=True, stars=4, comment="fine")
    assert set(record.assessments) == {"thumbs", "stars", "comment"}
    workbench.feedback(response.trace_id, correction="4")
    found = _assessments(response.trace_id)
    assert {("thumbs", "true"), ("stars", "4"), ("comment", '"fine"'), ("expected_response", '"4"')} <= found
    from workbench.tracking.backend import backend, current_uri

    info = backend(current_uri()).client.get_trace(response.trace_id).info
    assert {a.source.source_type for a in info.assessments} == {"HUMAN"}


def test_bad_feedback_and_missing_traces_are_clear_errors():
    response = workbench.complete("hello", "fake/echo")
    with pytest.raises(ConfigError, match="no signal"):
        workbench.feedback(response)
    with pytest.raises(ConfigError, match="stars=7"):
        workbench.feedback(response, stars=7)
    with pytest.raises(ConfigError, match="thumbs='sideways'"):
        workbench.feedback(response, thumbs="sideways")
    with pytest.raises(NotFoundError, match="no trace 'tr-0000"):
        workbench.feedback("tr-" + "0" * 32, thumbs=True)
    workbench.configure(tracing=False)
    untraced = workbench.complete("no trace please", "fake/echo")
    with pytest.raises(WorkbenchError, match="tracing is off"):
        workbench.feedback(untraced, thumbs=True)


def test_training_data_exports_sft_and_preferences_in_trl_shape(tmp_path):
    liked = workbench.complete("Name a colour.", "fake/echo")
    workbench.feedback(liked, stars=5)
    workbench.feedback(liked, stars=5)  # the same signal twice: one row
    corrected = workbench.complete("Capital of Italy?", "fake/echo")
    workbench.feedback(corrected, thumbs=False, correction="Rome.")
    meh = workbench.complete("Tell a joke.", "fake/echo")
    workbench.feedback(meh, stars=2)
    a = workbench.complete("Say hi", "fake/echo")
    b = workbench.complete("Say hi", "fake/slow?ms=1")
    workbench.feedback(a, preferred_over=b)
    up = workbench.complete("Pick a number", "fake/echo", temperature=0.1)
    from workbench.providers import fake

    fake.enqueue(["seven hundred"])
    down = workbench.complete("Pick a number", "fake/script", cache=False)
    workbench.feedback(up, thumbs=True)
    workbench.feedback(down, thumbs=False)

    sft = workbench.training_data.sft(min_stars=4, path=tmp_path / "sft.jsonl")
    assert set(sft["input"]) == {"Name a colour.", "Capital of Italy?", "Pick a number"}
    assert sft.set_index("input").loc["Capital of Italy?", "output"] == "Rome."  # the human's edit
    lines = [json.loads(x) for x in (tmp_path / "sft.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 3 and all(list(x) == ["messages"] and x["messages"][-1]["role"] == "assistant" for x in lines)

    prefs = workbench.training_data.preferences(path=tmp_path / "dpo.jsonl")
    triples = set(zip(prefs["prompt"], prefs["chosen"], prefs["rejected"], strict=True))
    assert ("Capital of Italy?", "Rome.", "Capital of Italy?") in triples  # correction beats the original
    assert ("Pick a number", "Pick a number", "seven hundred") in triples  # thumbs up beats thumbs down
    assert len(prefs) == 2  # the winner pick had two identical answers (both echo): dropped, not a preference
    rows = [json.loads(x) for x in (tmp_path / "dpo.jsonl").read_text(encoding="utf-8").splitlines()]
    assert all(list(r) == ["prompt", "chosen", "rejected"] and r["chosen"][0]["role"] == "assistant" for r in rows)


def test_a_winner_pick_is_a_preference():
    from workbench.providers import fake

    fake.enqueue(["Hello there, friend!", "hi"])
    a = workbench.complete("Greet me", "fake/script", cache=False)
    b = workbench.complete("Greet me", "fake/script", cache=False)
    workbench.feedback(a, preferred_over=[b])
    assert ("preferred", "false") in _assessments(b.trace_id)
    prefs = workbench.training_data.preferences()
    assert list(prefs[["chosen", "rejected"]].itertuples(index=False, name=None)) == [("Hello there, friend!", "hi")]


_WRITER = textwrap.dedent("""
    import sys
    import workbench
    name = sys.argv[1]
    response = workbench.complete(f"process {name}", "fake/echo")
    qa = workbench.golden("shared")
    for i in range(200):
        workbench.feedback(response, stars=1 + i % 5)
        qa.add(f"{name} question {i}", "answer")
""")


@pytest.mark.slow  # starts processes or a server: left out of make test-fast
@pytest.mark.timeout(300)
def test_two_processes_adding_feedback_and_golden_rows_lose_nothing(workbench_home, shared_store):
    env = {**os.environ, "WORKBENCH_HOME": str(workbench_home), "WORKBENCH_TRACKING_URI": shared_store}
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, name], env=env, stderr=subprocess.PIPE, text=True)
             for name in ("a", "b")]
    errors = [p.communicate(timeout=280)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    from workbench.signals.journal import journal

    stars = journal().rows("stars")
    assert len(stars) == 400 and len({r.trace_id for r in stars}) == 2
    assert len(workbench.golden("shared")) == 400
    from workbench.tracking.backend import backend, current_uri

    client = backend(current_uri()).client
    stored = [a for t in {r.trace_id for r in stars} for a in client.get_trace(t).info.assessments if a.name == "stars"]
    assert len(stored) == 400  # and every one is in MLflow


def test_signals_bar_widget_clicks_record_feedback_and_degrades_to_text():
    from workbench.notebook.signals_bar import signals_bar

    response = workbench.complete("Widget question", "fake/echo")
    bar = signals_bar(response)
    bundle = bar._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert f"workbench.feedback('{response.trace_id}'" in bundle["text/plain"] and "<code>" in bundle["text/html"]
    controls = bar.children[0].children[0].children
    controls[0].value = True  # thumbs up
    controls[1].value = "5"  # five stars
    status = bar.children[-1].value
    assert "stored" in status, status
    assert {("thumbs", "true"), ("stars", "5")} <= _assessments(response.trace_id)

    other = workbench.complete("Widget question two", "fake/echo")
    both = signals_bar({"fake/echo": response, "fake/other": other})
    pick = both.children[-2]
    pick.value = pick.options[1]
    assert "preference stored" in both.children[-1].value
    assert ("preferred", "true") in _assessments(other.trace_id)
    assert "preferred_over" in both._repr_mimebundle_()["text/plain"]

    workbench.configure(tracing=False)
    untraced = signals_bar(workbench.complete("untraced", "fake/echo"))
    assert "tracing" in untraced._repr_mimebundle_()["text/plain"]


# -- QA pass ------------------------------------------------------------------------------------------------------


def test_exports_to_an_unwritable_path_are_one_line(tmp_path):
    (tmp_path / "a-file").write_text("x")
    for export in (workbench.training_data.sft, workbench.training_data.preferences):
        for target in (tmp_path / "a-file" / "out.jsonl", tmp_path):
            with pytest.raises(WorkbenchError, match="cannot write") as caught:
                export(path=target)
            assert "\n" not in str(caught.value)
        with pytest.raises(ConfigError, match="path=5"):
            export(path=5)


def test_feedback_with_tracing_in_memory_says_how_to_store_it(monkeypatch):
    from workbench import config

    monkeypatch.setenv("WORKBENCH_TRACING", "memory")
    config.reset_settings()
    response = workbench.complete("hi", "fake/echo")
    with pytest.raises(WorkbenchError, match="tracing='memory'.*WORKBENCH_TRACING=on"):
        workbench.feedback(response, stars=5)


# -- issue 12: thumbs are a toggle, comments are stored as shown ---------------------------------------------------


def _thumbs_in_mlflow(trace_id):
    from workbench.tracking.backend import backend, current_uri

    info = backend(current_uri()).client.get_trace(trace_id).info
    return sorted((a.value, a.valid) for a in info.assessments if a.name == "thumbs")


def test_thumbs_are_a_toggle_the_last_choice_wins_in_mlflow_the_bar_and_training_data():
    from workbench.notebook.signals_bar import signals_bar

    response = workbench.complete("Toggle question", "fake/echo")
    bar = signals_bar(response)
    thumbs = bar.children[0].children[0].children[0]
    assert [label for label, _ in thumbs._options_full] == ["👍 good", "👎 bad"]  # words where no emoji font is
    thumbs.value = True
    thumbs.value = False
    assert "👎 bad stored (replaces your earlier choice)" in bar.children[-1].value
    # MLflow keeps the first opinion, overridden (invalid); the second alone is valid
    assert _thumbs_in_mlflow(response.trace_id) == [(False, True), (True, False)]
    thumbs.value = False  # the same choice again (a re-sync) stores nothing new
    assert len(_thumbs_in_mlflow(response.trace_id)) == 2
    # a bar drawn again for the same answer shows the stored choice pressed
    assert signals_bar(response).children[0].children[0].children[0].value is False
    # training data reads the final choice: a disliked answer is not an SFT example
    assert "Toggle question" not in set(workbench.training_data.sft()["input"])
    thumbs.value = True
    assert "Toggle question" in set(workbench.training_data.sft()["input"])
    assert _thumbs_in_mlflow(response.trace_id) == [(False, False), (True, False), (True, True)]


class _Loop:
    """The kernel's call_later, run by hand."""

    def __init__(self):
        self.queue = []

    def later(self, delay, callback):
        self.queue.append(callback)

    def run(self):
        while self.queue:
            self.queue.pop(0)()


def test_a_comment_is_stored_as_the_box_showed_it_when_its_value_arrives_after_enter():
    import ipywidgets as w

    from workbench.notebook.comment_box import CommentBox

    stored, said, loop = [], [], _Loop()
    box = CommentBox(w, lambda text: (stored.append(text), f"comment stored: {text!r}")[1],
                     lambda line, ok: said.append((line, ok)), later=loop.later)
    assert box.text.continuous_update is False  # no value per key: the browser commits it on Enter or blur
    box.text._handle_custom_msg({"event": "submit"}, [])  # Enter: the browser sends it before the value
    assert stored == [] and box.pending
    box.text.value = "too vague"  # the committed value, right behind it
    assert stored == ["too vague"] and said[-1] == ("comment stored: 'too vague'", True)
    loop.run()  # the no-value fallback of that submit does nothing more
    assert stored == ["too vague"]
    box.text._handle_custom_msg({"event": "submit"}, [])  # Enter again, nothing typed: nothing new
    loop.run()
    assert stored == ["too vague"]
    # typed, the box lost the focus (value committed), focused again, Enter: no value follows; stored anyway
    box.text.value = "nice"
    box.text._handle_custom_msg({"event": "submit"}, [])
    loop.run()
    assert stored == ["too vague", "nice"]
    # the button: the click overtakes the value the blur committed; it waits for it the same way
    box.send.click()
    box.text.value = "nice and short"
    assert stored == ["too vague", "nice", "nice and short"]
    loop.run()
    box.send.click()
    box.text.value = ""
    loop.run()
    assert said[-1] == ("write a comment first, then press Enter", False) and len(stored) == 3


def test_the_bars_comment_reaches_mlflow_exactly():
    from workbench.notebook.signals_bar import signals_bar
    from workbench.tracking.backend import backend, current_uri

    response = workbench.complete("Comment question", "fake/echo")
    bar = signals_bar(response)
    box = bar.children[0].comment_box
    box.text.value = "nice and short"
    box.text._handle_custom_msg({"event": "submit"}, [])  # no kernel here: stored at once
    assert bar.children[-1].value.endswith("comment stored: &#x27;nice and short&#x27;</span>")
    info = backend(current_uri()).client.get_trace(response.trace_id).info
    assert [a.value for a in info.assessments if a.name == "comment"] == ["nice and short"]


def test_feedback_and_runs_carry_the_user(monkeypatch):
    """Issue 13, who did what: a team filters the MLflow UI by person, on feedback and on runs too."""
    from mlflow.tracking import MlflowClient

    from workbench.tracking.backend import backend, current_uri

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "carol")
    response = workbench.complete("Who asked?", "fake/echo", cache=False)
    workbench.feedback(response, thumbs=True)
    info = backend(current_uri()).client.get_trace(response.trace_id).info
    assert [a.source.source_id for a in info.assessments if a.name == "thumbs"] == ["carol"]
    with workbench.run(name="who-ran-it") as run:
        run_id = run.run_id
    assert MlflowClient(current_uri()).get_run(run_id).data.tags["mlflow.user"] == "carol"
