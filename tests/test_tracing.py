"""Tracing without a store: spans, nesting, errors, attempts, lineage, runs in context, tracing off.

The exporter is replaced by a list here, so these tests never import MLflow.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

import workbench as wb
from workbench import tracing
from workbench.errors import ConfigError, ProviderError, WorkbenchError
from workbench.tracing import context, exporter, memory


@pytest.fixture(autouse=True)
def exported(monkeypatch):
    monkeypatch.setenv("WORKBENCH_TRACING", "on")  # whatever the suite's default is
    wb.config.reset_settings()
    tracing.reset()
    sent: list = []
    monkeypatch.setattr(exporter, "submit", sent.append)
    yield sent
    tracing.reset()


def by_name(trace):
    return {s.name: s for s in trace.spans}


def test_a_call_is_a_trace_with_an_llm_span_and_the_response_knows_its_id(exported):
    response = wb.complete("hello tracing", "fake/echo", cache=False, tags={"project": "support"}, temperature=0.1)
    assert response.trace_id and response.trace_id.startswith("tr-") and len(response.trace_id) == 35
    assert [t.trace_id for t in exported] == [response.trace_id]
    trace = exported[0]
    (span,) = trace.spans
    assert span.kind == "llm" and span.name == "fake/echo" and span.status == "OK" and span.parent_id is None
    assert span.outputs == "hello tracing"
    assert span.inputs["messages"] == [{"role": "user", "content": "hello tracing"}]
    assert span.inputs["params"]["temperature"] == 0.1
    attrs = span.attributes
    assert attrs["model_used"] == "fake/echo" and attrs["prompt_tokens"] == 2 and attrs["completion_tokens"] == 2
    assert attrs["cost_usd"] == pytest.approx(6e-6) and attrs["cache_hit"] is False
    assert trace.tags == {"project": "support"}
    assert wb.show_trace().trace_id == response.trace_id


def test_failed_attempts_are_error_children_of_the_llm_span(exported):
    response = wb.complete("fall back please", "fake/fail?status=503", fallbacks=["fake/echo"], cache=False)
    trace = exported[0]
    llm = trace.root
    assert llm.status == "OK" and llm.attributes["model_used"] == "fake/echo" and llm.attributes["fell_back"]
    attempts = [s for s in trace.spans if s.parent_id == llm.span_id]
    assert len(attempts) == len(response.attempts) >= 1
    assert all(a.status == "ERROR" and a.error_type and "(attempt" in a.name for a in attempts)
    assert all(a.start_ns >= llm.start_ns - 1_000_000 for a in attempts)


def test_the_bundle_marks_each_failed_attempt_by_an_attribute_not_only_its_name(exported):
    # the labextension tells attempts apart by this attribute (a span name is the user's to choose)
    response = wb.complete("fall back please", "fake/fail?status=503", fallbacks=["fake/echo"], cache=False)
    spans = wb.show_trace(response).bundle["spans"]
    marked = [s["attributes"]["attempt"] for s in spans if "attempt" in s["attributes"]]
    assert marked == list(range(1, len(response.attempts) + 1))
    assert all(s["status"] == "ERROR" for s in spans if "attempt" in s["attributes"])


def test_a_call_that_fails_everywhere_is_an_error_trace(exported):
    with pytest.raises(ProviderError):
        wb.complete("nobody answers", "fake/fail?status=400", cache=False)
    root = exported[0].root
    assert root.status == "ERROR" and root.error_type == "ProviderError" and "fake/fail" in root.error_message


def test_user_spans_nest_calls_and_an_exception_marks_the_span_and_propagates(exported):
    @wb.traced(kind="tool")
    def send_email(to: str, body: str) -> str:
        raise ValueError("Invalid address")

    with (
        pytest.raises(ValueError, match="Invalid address"),
        wb.span("pipeline", inputs={"request": "Summarize this PDF and email it to Bob"}) as root,
    ):
        with wb.span("retrieve", kind="retriever") as step:
            step.set_outputs(["a", "b", "c"])
        answer = wb.complete("summarize a b c", "fake/echo", cache=False)
        send_email("bob@", answer.text)
    assert answer.trace_id == root.trace_id
    (trace,) = exported
    spans = by_name(trace)
    assert set(spans) == {"pipeline", "retrieve", "fake/echo",
                          "test_user_spans_nest_calls_and_an_exception_marks_the_span_and_propagates.<locals>.send_email"}
    tool = next(s for s in trace.spans if s.kind == "tool")
    assert tool.status == "ERROR" and tool.error_type == "ValueError" and tool.error_message == "Invalid address"
    assert tool.inputs == {"to": "bob@", "body": "summarize a b c"}
    assert spans["pipeline"].status == "ERROR" and spans["retrieve"].status == "OK"
    root_id = spans["pipeline"].span_id
    assert spans["retrieve"].parent_id == root_id and spans["fake/echo"].parent_id == root_id
    assert tool.parent_id == root_id
    assert spans["retrieve"].outputs == ["a", "b", "c"]


def test_traced_async_and_custom_name_and_no_capture(exported):
    @wb.traced(name="lookup", kind="retriever", capture=False)
    async def lookup(query: str) -> list[str]:
        await asyncio.sleep(0)
        return [query]

    assert asyncio.run(lookup("x")) == ["x"]
    span = exported[0].root
    assert span.name == "lookup" and span.kind == "retriever" and span.inputs is None and span.outputs is None


def test_acomplete_inside_a_span_joins_the_trace(exported):
    async def main():
        with wb.span("batch") as root:
            first = await wb.acomplete("one", "fake/echo", cache=False)
            second = await wb.acomplete("two", "fake/echo", cache=False)
        return root, first, second

    root, first, second = asyncio.run(main())
    assert first.trace_id == second.trace_id == root.trace_id
    assert len(exported) == 1 and len(exported[0].spans) == 3


def test_lineage_from_the_cell_goes_on_the_trace(exported):
    with tracing.lineage(notebook="notebooks/02_tracing.ipynb", execution_count=7, cell_id="abc",
                         template="Summarize {doc}", variables=["doc"]):
        response = wb.complete("Summarize the doc", "fake/echo", cache=False)
    trace = wb.show_trace(response.trace_id).trace
    assert trace.lineage == {"notebook": "notebooks/02_tracing.ipynb", "execution_count": 7, "cell_id": "abc",
                             "template": "Summarize {doc}", "variables": ["doc"]}
    assert wb.show_trace(response).bundle["lineage"]["cell_id"] == "abc"
    with pytest.raises(ConfigError, match="cel_id"), tracing.lineage(cel_id="typo"):
        pass


def test_calls_inside_a_run_carry_its_id_and_count_toward_it(exported):
    ref = context.RunRef("run123", "7")
    with context.use_run(ref):
        wb.complete("counted", "fake/echo", cache=False)
        with pytest.raises(ProviderError):
            wb.complete("fails", "fake/fail?status=400", cache=False)
    assert [(t.run_id, t.experiment_id) for t in exported] == [("run123", "7"), ("run123", "7")]
    assert ref.calls == 2 and ref.errors == 1 and ref.prompt_tokens == 1 and ref.cost_usd > 0


def test_tracing_off_records_nothing(exported, monkeypatch):
    monkeypatch.setenv("WORKBENCH_TRACING", "0")
    wb.config.reset_settings()
    response = wb.complete("untraced", "fake/echo", cache=False)
    with wb.span("step") as step:
        step.set_outputs(1)
    assert response.trace_id is None and step.trace_id is None and exported == []
    with pytest.raises(ConfigError, match="WORKBENCH_TRACING=memory"):
        wb.configure(tracing="maybe")


def test_memory_mode_records_traces_but_never_exports(exported, monkeypatch):
    monkeypatch.setenv("WORKBENCH_TRACING", "memory")
    wb.config.reset_settings()
    response = wb.complete("kept here", "fake/echo", cache=False)
    assert response.trace_id and exported == []
    assert wb.show_trace(response).spans[0]["outputs"] == "kept here"


def test_bad_arguments_say_what_to_pass():
    with pytest.raises(ConfigError, match="kind='tool'"):
        wb.span("x", kind="toool")
    with pytest.raises(ConfigError, match="span kind"):
        wb.traced(kind="nope")
    with pytest.raises(ConfigError, match="non-empty"):
        wb.span("")


def test_show_trace_before_any_call_says_what_to_do():
    memory.forget_all()
    with pytest.raises(WorkbenchError, match="no trace yet"):
        wb.show_trace()


def test_the_llm_magics_cell_context_is_lineage_too(exported):
    from workbench.notebook.lineage import CellContext, in_cell

    cell = CellContext(execution_count=4, cell_id="cell-9", template="Hi {name}", variables=("name",),
                       line="-m fake/echo")
    with in_cell(cell), tracing.lineage(notebook="demo.ipynb"):
        response = wb.complete("Hi Bo", "fake/echo", cache=False)
    assert wb.show_trace(response.trace_id).trace.lineage == {
        "execution_count": 4, "cell_id": "cell-9", "template": "Hi {name}", "variables": ["name"],
        "notebook": "demo.ipynb"}


def test_trace_magic_and_llm_line_commands(exported, ipython_shell):
    from workbench.notebook import line_commands, trace_magics

    shell = ipython_shell
    trace_magics.register(shell)
    response = wb.complete("magic", "fake/echo", cache=False)
    shown = []
    import IPython.display

    original = IPython.display.display
    IPython.display.display = lambda value, **kwargs: shown.append(value)
    try:
        shell.run_line_magic("trace", "")
        shell.run_line_magic("trace", response.trace_id)
        shell.run_line_magic("trace", "tr-a tr-b")  # a WorkbenchError: one red line, no traceback
    finally:
        IPython.display.display = original
    views, errors = shown[:2], shown[2:]
    assert [v.trace_id for v in views] == [response.trace_id] * 2
    assert len(errors) == 1 and errors[0]["text/plain"].startswith("ConfigError: %trace takes at most one trace id")
    assert "\n" not in errors[0]["text/plain"]
    with pytest.raises(ConfigError, match="%llm run start"):
        line_commands.llm_line("run begin")
    with pytest.raises(ConfigError, match="port=N"):
        line_commands.llm_line("mlflow --verbose")
    with pytest.raises(ConfigError, match="unknown %llm command"):
        line_commands.llm_line("nope")


def test_the_gateway_traces_every_call_without_importing_tracing_itself(tmp_path):
    # The gateway (floor 2) never imports tracing (floor 4): the package face loads tracing before the first call.
    probe = ("import sys, workbench.gateway.client as client\n"
             "before = 'workbench.tracing' in sys.modules\n"
             "response = client.complete('hi', 'fake/echo', cache=False)\n"
             "print(before, 'workbench.tracing' in sys.modules, bool(response.trace_id))")
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path), "WORKBENCH_TRACING": "memory"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env).stdout
    assert out.split() == ["False", "True", "True"]
