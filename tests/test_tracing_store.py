"""Traces, runs and prompts in a real MLflow store (sqlite), secrets kept out, an unreachable store survived.

The tests of this module share one home folder: creating MLflow's tables takes seconds, once is enough.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
import warnings

import pytest

import workbench as wb
from workbench import config, tracing
from workbench.errors import ConfigError
from workbench.tracing import TracingWarning, exporter, memory
from workbench.tracking.backend import ensure_mlflow


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory):
    return tmp_path_factory.mktemp("mlflow-home")


@pytest.fixture(autouse=True)
def home(shared_home, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(shared_home))
    monkeypatch.setenv("WORKBENCH_TRACING", "on")  # whatever the suite's default is
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("WORKBENCH_TRACKING_URI", raising=False)
    config.reset_settings()
    tracing.reset()
    yield shared_home
    tracing.flush(30)
    tracing.reset()


def seed_pipeline(model: str = "fake/echo") -> tuple[str, wb.Response]:
    @wb.traced(kind="tool")
    def send_email(to: str, body: str) -> None:
        raise ValueError("Invalid address")

    with (
        pytest.raises(ValueError),
        wb.span("summarize_and_email", inputs={"request": "Summarize this PDF and email it to Bob"}) as root,
    ):
        with wb.span("retrieve", kind="retriever") as step:
            step.set_outputs(["chunk 1", "chunk 2", "chunk 3"])
        answer = wb.complete("Summarize: chunk 1, chunk 2, chunk 3", model, cache=False)
        send_email("bob@", answer.text)
    return root.trace_id, answer


def test_a_trace_is_stored_in_mlflow_and_reads_back_as_the_same_tree():
    trace_id, answer = seed_pipeline()
    in_memory = wb.show_trace(trace_id).bundle
    assert tracing.flush(60)
    memory.forget_all()  # force the read from MLflow
    stored = wb.show_trace(trace_id)
    bundle = stored.bundle
    assert [(s["name"], s["depth"], s["status"], s["kind"]) for s in bundle["spans"]] == [
        (s["name"], s["depth"], s["status"], s["kind"]) for s in in_memory["spans"]]
    tool = bundle["spans"][-1]
    assert tool["error"] == {"type": "ValueError", "message": "Invalid address"}
    llm = next(s for s in bundle["spans"] if s["kind"] == "llm")
    assert llm["outputs"] == answer.text and llm["attributes"]["prompt_tokens"] == answer.prompt_tokens
    assert bundle["totals"]["prompt_tokens"] == answer.prompt_tokens

    mlflow = ensure_mlflow()
    trace = mlflow.MlflowClient().get_trace(trace_id)
    assert trace.info.state.value == "ERROR" and trace.info.tags["mlflow.traceName"] == "summarize_and_email"
    assert trace.info.token_usage["input_tokens"] == answer.prompt_tokens
    experiment = mlflow.get_experiment(trace.info.experiment_id)
    assert experiment.name == "workbench"
    assert experiment.artifact_location.startswith(str((config.settings().home / "mlartifacts").as_uri()))


def test_a_fake_api_key_never_reaches_the_store_or_artifacts(monkeypatch):
    key = "sk-test-" + secrets.token_hex(20)
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with wb.run("secrets-check", name="keyed", note=f"the key is {key}"):
        with wb.span("step", inputs={"api_key_echo": key}) as step:
            step.set_outputs(f"Bearer {key}")
            wb.complete(f"my key is {key}", "fake/echo", cache=False, tags={"who": key})
        with pytest.raises(RuntimeError), wb.span("fails"):
            raise RuntimeError(f"auth failed for {key}")
    assert tracing.flush(60)
    home = config.settings().home
    checked = 0
    for folder, _, files in os.walk(home):
        for name in files:
            path = os.path.join(folder, name)
            if not (name.startswith("mlflow.db") or "mlartifacts" in path):
                continue  # MLflow's store and artifacts; the gateway's own files are its tests' business
            with open(path, "rb") as handle:
                data = handle.read()
            assert key.encode() not in data, f"the API key was written to {path}"
            checked += 1
    assert checked >= 1  # at least the MLflow database was looked at
    view = wb.show_trace(step.trace_id)
    assert key not in view.html and "***" in view.html


def test_calls_inside_a_run_log_under_it_and_runs_lists_it():
    with wb.run("tracing-tests", name="first", temperature=0.2) as run:
        answer = wb.complete("inside a run", "fake/echo", cache=False)
    assert run.run_id is None  # ended
    frame = wb.runs("tracing-tests")
    row = frame.iloc[0]
    assert row["name"] == "first" and row["params.temperature"] == "0.2" and row["metrics.calls"] == 1
    assert row["metrics.prompt_tokens"] == answer.prompt_tokens
    mlflow = ensure_mlflow()
    trace = mlflow.MlflowClient().get_trace(answer.trace_id)
    assert trace.info.trace_metadata["mlflow.sourceRun"] == row["run_id"]
    assert trace.info.experiment_id == row["experiment_id"]
    assert len(wb.runs()) >= 1


def test_a_session_run_spans_cells_until_ended(capsys):
    from workbench.notebook.line_commands import llm_line

    llm_line("run start session experiment=tracing-tests temperature=0.3")
    assert "run 'session' open in experiment 'tracing-tests'" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="already open"):
        tracing.start_run("tracing-tests")
    answer = wb.complete("session call", "fake/echo", cache=False)
    run_id = tracing.active_run().run_id
    llm_line("run end")
    assert "ended run 'session'" in capsys.readouterr().out
    assert tracing.active_run() is None
    assert memory.recent(answer.trace_id).run_id == run_id
    row = wb.runs("tracing-tests").set_index("run_id").loc[run_id]
    assert row["params.temperature"] == "0.3" and row["metrics.calls"] == 1 and row["status"] == "FINISHED"


@pytest.mark.slow  # starts processes or a server: left out of make test-fast
def test_the_mlflow_ui_starts_on_loopback_against_the_store():
    import json
    import urllib.request

    from workbench.tracking.ui import start_ui

    wb.complete("so the store has something", "fake/echo", cache=False)
    assert tracing.flush(60)
    server = start_ui(port=closed_port(), wait_s=180)
    try:
        assert server.url.startswith("http://127.0.0.1:")
        assert start_ui() is server  # one UI per store and process
        url = f"{server.url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=workbench"
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - the local UI
            assert json.loads(answer.read())["experiment"]["name"] == "workbench"
    finally:
        server.stop()
    assert not server.running


def test_prompts_get_a_new_version_only_when_the_text_changes():
    first = wb.register_prompt("summarize", "Summarize {doc} in {n} words. Keep {{braces}}.")
    again = wb.register_prompt("summarize", "Summarize {doc} in {n} words. Keep {{braces}}.")
    changed = wb.register_prompt("summarize", "Summarize {doc} in {n} bullet points.")
    assert (first.version, again.version, changed.version) == (1, 1, 2)
    latest = wb.prompt("summarize")
    assert latest.version == 2 and latest.variables == ("doc", "n")
    old = wb.prompt("summarize", version=1)
    assert old.template == "Summarize {doc} in {n} words. Keep {{braces}}."  # stored verbatim
    assert old.format(doc="the PDF", n=3) == "Summarize the PDF in 3 words. Keep {braces}."
    with pytest.raises(ConfigError, match="needs n"):
        old.format(doc="x")
    with pytest.raises(ConfigError, match="no prompt 'missing'"):
        wb.prompt("missing")
    with pytest.raises(ConfigError, match="not valid"):
        wb.register_prompt("bad name!", "x")
    table = wb.prompts()
    assert table.loc[table["name"] == "summarize", "version"].item() == 2


def test_a_trace_links_to_its_prompt_version():
    version = wb.register_prompt("linked", "Say {word}")
    with tracing.lineage(template=version.template, variables=["word"], prompt_name="linked",
                         prompt_version=version.version):
        answer = wb.complete(version.format(word="hi"), "fake/echo", cache=False)
    assert tracing.flush(60)
    mlflow = ensure_mlflow()
    trace = mlflow.MlflowClient().get_trace(answer.trace_id)
    assert trace.info.tags["workbench.template"] == "Say {word}"
    assert '"name":"linked"' in trace.info.tags["mlflow.linkedPrompts"]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_store_costs_calls_nothing_and_warns_once(monkeypatch):
    wb.complete("warm up", "fake/echo", cache=False)  # litellm's import is not what we measure
    assert tracing.flush(60)
    monkeypatch.setenv("WORKBENCH_TRACKING_URI", f"http://127.0.0.1:{closed_port()}")
    config.reset_settings()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        took = []
        for i in range(20):
            start = time.perf_counter()
            answer = wb.complete(f"call {i}", "fake/echo", cache=False)
            took.append(time.perf_counter() - start)
            assert answer.text == f"call {i}" and answer.trace_id
        start = time.perf_counter()
        assert tracing.flush(30)
        flush_s = time.perf_counter() - start
        for i in range(5):
            wb.complete(f"after {i}", "fake/echo", cache=False)
        tracing.flush(30)
    ours = [w for w in caught if issubclass(w.category, TracingWarning)]
    assert len(ours) == 1, [str(w.message) for w in ours]
    message = str(ours[0].message)
    assert "tracing to MLflow is off" in message and "cannot connect" in message
    assert max(took) < 1.0 and sorted(took)[10] < 0.1  # normal call times: no MLflow retries on the hot path
    assert flush_s < 5
    assert exporter.off_reason(config.settings().effective_tracking_uri)
    assert wb.show_trace().spans[0]["outputs"] == "after 4"  # traces stay in memory for display


_FLUENT_PROBE = """
import os, sys
import workbench as wb
from workbench import tracing
if sys.argv[1] == "chosen":
    import mlflow
    mlflow.set_tracking_uri(sys.argv[2])
answer = wb.complete("Which store do you see?", "fake/echo")
tracing.flush(30)
import mlflow
found = mlflow.get_trace(answer.trace_id)
print("FOUND" if found is not None else "MISSING", mlflow.get_tracking_uri())
print("CWD_DB" if os.path.exists("mlflow.db") else "NO_CWD_DB")
print("ENV", os.environ.get("MLFLOW_TRACKING_URI"))
"""


@pytest.mark.slow
def test_mlflows_own_api_in_the_kernel_sees_workbenchs_store_unless_the_user_chose_one(home, tmp_path):
    """Issue 12 item 5: `mlflow.get_trace(_llm.trace_id)` after Workbench calls finds the trace."""
    import subprocess
    import sys

    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "WORKBENCH_TRACKING_URI")}
    env.update(WORKBENCH_HOME=str(tmp_path / "home"), WORKBENCH_TRACING="on",
               PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")])))

    def probe(*args: str) -> str:
        ran = subprocess.run([sys.executable, "-c", _FLUENT_PROBE, *args], cwd=work, env=env, capture_output=True,
                             text=True, timeout=300)
        assert ran.returncode == 0, ran.stderr[-2000:]
        return ran.stdout

    out = probe("default")
    store = f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}"
    assert f"FOUND {store}" in out, out
    assert "NO_CWD_DB" in out and "ENV None" in out, out  # nothing in the working folder; children not pointed
    theirs = f"sqlite:///{tmp_path / 'theirs.db'}"
    out = probe("chosen", theirs)
    # the user's choice stands (set_tracking_uri exports MLFLOW_TRACKING_URI, which Workbench follows too)
    assert f"FOUND {theirs}" in out and "NO_CWD_DB" in out, out
