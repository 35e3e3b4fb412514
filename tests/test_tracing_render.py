"""Trace -> bundle -> HTML: the seed's example, escaping, truncation, the size cap. No store involved."""

from __future__ import annotations

import json
import re
import time

import pytest

import workbench as wb
from workbench import tracing
from workbench.tracing import exporter
from workbench.tracing.bundle import MIME_TYPE, SCHEMA_VERSION, build_bundle
from workbench.tracing.records import SpanRecord, TraceRecord
from workbench.tracing.render_html import render_html
from workbench.tracing.view import TraceView

MS = 1_000_000
XSS = "<img src=x onerror=alert(1)><script>alert(2)</script>"


@pytest.fixture(autouse=True)
def no_export(monkeypatch):
    monkeypatch.setenv("WORKBENCH_TRACING", "memory")  # rendering only: MLflow is never opened
    wb.config.reset_settings()
    tracing.reset()
    monkeypatch.setattr(exporter, "submit", lambda trace: None)
    yield
    tracing.reset()


def seed_trace() -> TraceRecord:
    """The seed's "Summarize this PDF and email it to Bob": retriever 200 ms, LLM 2 s, tool failed."""
    t0 = 1_700_000_000_000 * MS
    trace = TraceRecord("tr-" + "ab" * 16, "sqlite:///unused", finished=True)
    root = SpanRecord("0000000000000001", None, "summarize_and_email", "chain", t0, t0 + 2260 * MS, "ERROR",
                      "ValueError", "Invalid address", inputs={"request": "Summarize this PDF and email it to Bob"})
    retrieve = SpanRecord("0000000000000002", root.span_id, "retrieve", "retriever", t0 + 5 * MS, t0 + 205 * MS,
                          "OK", outputs=["chunk 1", "chunk 2", "chunk 3"])
    llm = SpanRecord("0000000000000003", root.span_id, "fake/slow?ms=2000", "llm", t0 + 210 * MS, t0 + 2210 * MS,
                     "OK", inputs={"messages": [{"role": "user", "content": "Summarize: chunk 1..."}]},
                     outputs="The PDF says three things.",
                     attributes={"model_used": "fake/slow?ms=2000", "prompt_tokens": 40, "completion_tokens": 5,
                                 "cost_usd": 0.00005})
    tool = SpanRecord("0000000000000004", root.span_id, "send_email", "tool", t0 + 2215 * MS, t0 + 2255 * MS,
                      "ERROR", "ValueError", "Invalid address", inputs={"to": "bob@"})
    trace.spans = [root, tool, llm, retrieve]  # any order in: the bundle orders them
    return trace


def test_seed_trace_renders_in_order_nested_with_the_error_and_latencies():
    view = TraceView(seed_trace())
    bundle = view.bundle
    assert bundle["version"] == SCHEMA_VERSION == 1
    assert [(s["name"], s["depth"]) for s in bundle["spans"]] == [
        ("summarize_and_email", 0), ("retrieve", 1), ("fake/slow?ms=2000", 1), ("send_email", 1)]
    assert [round(s["duration_ms"]) for s in bundle["spans"]] == [2260, 200, 2000, 40]
    assert bundle["totals"] == {"spans": 4, "errors": 2, "llm_calls": 1, "llm_failed": 0, "prompt_tokens": 40,
                                "completion_tokens": 5, "cost_usd": 0.00005}
    html = view.html
    # order: the steps appear in the order they ran
    positions = [html.index(name) for name in ("summarize_and_email", "retrieve", "fake/slow?ms=2000", "send_email")]
    assert positions == sorted(positions)
    # nesting: the three steps sit inside the root's <details>, which closes last
    root_open = html.index("<details")
    assert html.count("<details") == html.count("</details>") == 4
    assert html.rindex("</details>") > positions[-1] > root_open
    assert re.search(r"<details open><summary>.*summarize_and_email", html)  # the path to the error is unfolded
    # latencies, and a bar proportional to the trace's duration
    for text in ("200 ms", "2.00 s", "40 ms", "2.26 s"):
        assert text in html
    llm_line = next(line for line in view.text.splitlines() if "fake/slow" in line)
    bar = re.search(r"[\u00b7\u2588]{24}", llm_line).group(0)
    assert bar.count("\u2588") == round(2000 / 2260 * 24)
    # the error, in red, with its message
    assert re.search(r'<span style="color:#c62828">ValueError: Invalid address</span>', html)
    assert "40\u219215 tok" not in html and "40\u21925 tok" in html


def test_a_model_answer_with_markup_is_escaped_in_the_html():
    response = wb.complete(XSS, "fake/echo", cache=False)
    assert response.text == XSS
    view = wb.show_trace(response.trace_id)
    html = view.html
    assert "<script>" not in html and "<img" not in html and "onerror=alert(1)>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in html
    bundle = view._repr_mimebundle_()
    assert set(bundle) == {MIME_TYPE, "text/html", "text/plain"}
    assert bundle[MIME_TYPE]["spans"][0]["outputs"] == XSS  # the payload is data; the extension uses textContent
    json.dumps(bundle[MIME_TYPE])  # JSON-safe, so it can live in the .ipynb


def test_markup_in_span_names_tags_and_errors_is_escaped():
    with pytest.raises(RuntimeError), wb.span(XSS, kind="tool", attributes={"x": XSS}):
        raise RuntimeError(XSS)
    html = wb.show_trace().html
    assert "<script>" not in html and "<img" not in html


def test_long_payloads_are_truncated_with_their_length():
    text = "word " * 2000  # 10,000 characters
    with wb.span("long", inputs={"doc": text}) as step:
        step.set_outputs(text)
    bundle = wb.show_trace().bundle
    span = bundle["spans"][0]
    assert span["outputs"] == {"__truncated__": True, "preview": text[:2000], "length": 10000}
    assert span["inputs"]["doc"]["length"] == 10000
    assert "10000 characters in all" in render_html(bundle)


def test_a_huge_trace_is_capped_and_says_so():
    t0 = time.time_ns()
    trace = TraceRecord("tr-" + "cd" * 16, "sqlite:///unused", finished=True)
    root = SpanRecord("f" * 16, None, "root", "chain", t0, t0 + 5000 * MS, "OK")
    trace.spans.append(root)
    for i in range(3000):
        trace.spans.append(SpanRecord(f"{i:016x}", root.span_id, f"step {i}", "tool", t0 + i * MS, t0 + (i + 1) * MS,
                                      "OK", inputs={"q": "x" * 3000}, outputs="y" * 3000))
    bundle = build_bundle(trace, max_bytes=200_000)
    assert len(json.dumps(bundle, separators=(",", ":"), ensure_ascii=False)) <= 200_000
    limits = bundle["limits"]
    assert limits["reduced"] and (limits["payloads_omitted"] or limits["text_chars"] < 2000)
    assert limits["spans_omitted"] + len(bundle["spans"]) == 3001
    html = render_html(bundle, max_chars=150_000)
    assert len(html) <= 150_000 and "not shown here" in html


def test_an_open_trace_renders_as_in_progress():
    with wb.span("outer") as outer, wb.span("inner"):
        view = wb.show_trace(outer.trace_id) if False else TraceView(wb.tracing.context.current_span()[0])
        bundle = view.bundle
    assert bundle["status"] == "IN_PROGRESS"
    assert [s["duration_ms"] for s in bundle["spans"]] == [None, None]
    assert "running" in view.html


def test_a_trace_whose_only_llm_call_failed_counts_that_call_as_failed():
    """Issue 12 item 11: 'fake/fail' with its three failed tries is 1 LLM call, 1 failed, not 0 calls."""
    with pytest.raises(wb.WorkbenchError):
        wb.complete("Are you there?", "fake/fail")
    view = tracing.show_trace()
    totals = view.bundle["totals"]
    assert (totals["llm_calls"], totals["llm_failed"]) == (1, 1), totals
    assert "1 LLM call, 1 failed" in view.html
    # the failed tries are children of the call, not calls of their own
    assert [s["name"] for s in view.bundle["spans"]][1:] == [f"fake/fail (attempt {n})" for n in (1, 2, 3)]
