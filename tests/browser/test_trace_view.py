"""The extension in real Chromium, as a user drives it: a notebook, %%llm, %trace, clicks and keys.

One notebook holds every cell; each test runs its own cells (click the prompt, Shift+Enter) in order.
Screenshots of the trace view go to tests/browser/screenshots/*.tmp.png on every run, and to
docs/screenshots/trace-{light,dark}.png when those are missing or WORKBENCH_UPDATE_SCREENSHOTS=1 (so a
test run does not rewrite committed images).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from lab import Lab, Notebook

pytestmark = pytest.mark.browser  # make test-fast leaves it out: JupyterLab in Chromium

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).parent / "screenshots"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
TRACE_MIME = "application/vnd.workbench.trace+json"

XSS = 'Show this: <img src=x onerror="window.__xss=1"> and <script>window.__xss=2</script>'

PIPELINE = '''\
import time
import workbench as wb

@wb.traced(kind="retriever")
def retrieve(question):
    time.sleep(0.2)
    return ["chunk 1: revenue grew", "chunk 2: costs fell", "chunk 3: Bob wants a summary"]

@wb.traced(kind="tool")
def send_email(to, body):
    raise ValueError("Invalid address")

try:
    with wb.span("summarize_and_email", kind="chain", inputs={"request": "Summarize this PDF and email it to Bob"}):
        chunks = retrieve("Summarize this PDF")
        summary = wb.complete("Summarize: " + " ".join(chunks), "fake/echo")
        send_email("bob@", summary.text)
except ValueError as exc:
    print(f"email failed: {exc}")'''

BIG_TRACE = '''\
from workbench.tracing.records import SpanRecord, TraceRecord
from workbench.tracing.view import TraceView

MS = 1_000_000
big = TraceRecord("tr-" + "bf" * 16, "sqlite:///unused", finished=True)
big.spans.append(SpanRecord("%016x" % 1, None, "big_pipeline", "chain", 0, 1000 * MS, "OK"))
for i in range(2, 1001):
    parent = "%016x" % (1 if i % 10 == 2 else i - (i - 2) % 10)
    big.spans.append(SpanRecord("%016x" % i, parent, f"step {i}", "tool" if i % 3 else "llm", i * MS, (i + 5) * MS,
                                "OK", outputs=f"output of step {i}"))
TraceView(big)'''

NAMED_LIKE_AN_ATTEMPT = '''\
from workbench.tracing.records import SpanRecord, TraceRecord
from workbench.tracing.view import TraceView

MS = 1_000_000
tries = TraceRecord("tr-" + "a7" * 16, "sqlite:///unused", finished=True)
tries.spans.append(SpanRecord("%016x" % 1, None, "call", "llm", 0, 10 * MS, "OK"))
tries.spans.append(SpanRecord("%016x" % 2, "%016x" % 1, "my step (attempt 1)", "tool", MS, 2 * MS, "ERROR",
                              "ValueError", "a user span that only looks like a retry"))
tries.spans.append(SpanRecord("%016x" % 3, "%016x" % 1, "fake/fail", "llm", 2 * MS, 3 * MS, "ERROR",
                              "ServiceUnavailableError", "down", attributes={"attempt": 1}))
TraceView(tries)'''

FUTURE_VERSIONS = '''\
from IPython.display import display
MIME = "application/vnd.workbench.trace+json"
span = {"id": "0000000000000001", "parent_id": None, "depth": 0, "name": "future span", "kind": "hologram",
        "start_ms": 0, "duration_ms": 5, "status": "OK", "error": None, "inputs": None, "outputs": "ok",
        "attributes": {}, "a_new_field": True}
display({MIME: {"version": 2, "trace_id": "tr-future", "name": "newer schema", "spans": [span], "more": {}},
         "text/html": "<b>html fallback</b>", "text/plain": "text fallback"}, raw=True)
display({MIME: {"version": 3, "spans": "kept elsewhere now"},
         "text/html": "<b class='shown-fallback'>the html fallback</b>", "text/plain": "text fallback"}, raw=True)'''

READ_ASSESSMENTS = '''\
import json
from workbench.tracking.backend import backend, current_uri
from workbench.tracing import exporter
exporter.flush()
stored = backend(current_uri()).client.get_trace(ANSWER.trace_id)
print("ASSESSMENTS=" + json.dumps([[a.name, getattr(a, "value", None)] for a in stored.info.assessments]))'''

CELLS = {
    "load": "%load_ext workbench",
    "hello": "%%llm -m fake/echo -o ANSWER\nSay hello from the browser test",
    "pipeline": PIPELINE,
    "trace": "%trace",
    "xss": f"%%llm -m fake/echo\n{XSS}",
    "xss_trace": "%trace",
    "fallback": "%%llm -m fake/fail --fallback fake/echo\nAre you there?",
    "fallback_trace": "%trace",
    "named_attempt": NAMED_LIKE_AN_ATTEMPT,
    "future": FUTURE_VERSIONS,
    "assessments": READ_ASSESSMENTS,
    "big": BIG_TRACE,
    "budget": "%llm budget 5",
    "after_budget": "%%llm -m fake/echo\nOne more call, under a budget",
}
INDEX = {name: i for i, name in enumerate(CELLS)}


@pytest.fixture(scope="module")
def notebook(lab: Lab, page: Any) -> Notebook:
    lab.write_notebook("browser.ipynb", list(CELLS.values()))
    opened = Notebook(page, lab, "browser.ipynb").open()
    opened.run(INDEX["load"])
    return opened


def run(notebook: Notebook, name: str) -> Any:
    return notebook.run(INDEX[name])


def trace_view(output: Any) -> Any:
    view = output.locator(f'.wb-traceview[data-mime-type="{TRACE_MIME}"]')
    view.wait_for()
    return view


def row(view: Any, name: str) -> Any:
    return view.locator(".wb-row", has=view.page.locator(".wb-name", has_text=re.compile(f"^{re.escape(name)}$")))


def rgb(css: str) -> tuple[float, ...]:
    """'rgb(1, 2, 3)' / 'rgba(...)' -> (r, g, b)."""
    return tuple(float(x) for x in re.findall(r"[\d.]+", css)[:3])


def luminance(color: tuple[float, ...]) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in color)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def save_screenshot(element: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    shot = SCREENSHOTS / f"{name}.tmp.png"
    element.screenshot(path=str(shot))
    target = DOCS_SCREENSHOTS / f"{name}.png"
    if not target.exists() or os.environ.get("WORKBENCH_UPDATE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)
    return shot


def xss_fired(page: Any) -> Any:
    return page.evaluate("() => window.__xss")


# 1 -------------------------------------------------------------------------------------------------
def test_llm_cell_shows_the_answer_and_its_footer(notebook: Notebook) -> None:
    output = run(notebook, "hello")
    output.get_by_text("Say hello from the browser test").wait_for()
    footer = output.locator(".wb-footer")
    footer.wait_for()
    text = footer.inner_text()
    assert "fake/echo" in text and "tokens" in text and "$" in text, text


# 2 -------------------------------------------------------------------------------------------------
def test_trace_renders_through_the_extension_with_search_filter_and_keys(notebook: Notebook) -> None:
    page = notebook.page
    printed = run(notebook, "pipeline")
    printed.get_by_text("email failed: Invalid address").wait_for()
    output = run(notebook, "trace")
    view = trace_view(output)
    # the extension rendered it, not the HTML fallback
    assert view.get_attribute("data-mime-type") == TRACE_MIME
    assert output.locator(".jp-RenderedHTMLCommon").count() == 0  # no HTML fallback beside it
    names = view.locator(".wb-row .wb-name").all_inner_texts()
    assert names == ["summarize_and_email", "retrieve", "fake/echo", "send_email"], names

    # a click opens the span's output in the detail pane
    row(view, "fake/echo").click()
    detail = view.locator(".wb-detail")
    detail.locator(".wb-detail-name", has_text="fake/echo").wait_for()
    outputs = detail.locator(".wb-section-outputs")
    assert "Summarize: chunk 1: revenue grew" in outputs.inner_text()
    assert detail.locator(".wb-msg-user").count() == 1  # the messages as a conversation

    # search: matches counted, the match selected
    search = view.locator(".wb-search")
    search.fill("send_e")
    assert view.locator(".wb-match-count").inner_text() == "1 of 1"
    assert "wb-match-current" in row(view, "send_email").get_attribute("class")
    detail.locator(".wb-detail-name", has_text="send_email").wait_for()
    search.fill("")

    # filter by kind: only tools, and the chain they sit in for context
    view.locator(".wb-filter-kind").select_option("tool")
    assert view.locator(".wb-row .wb-name").all_inner_texts() == ["summarize_and_email", "send_email"]
    assert "wb-context" in row(view, "summarize_and_email").get_attribute("class")
    view.locator(".wb-filter-kind").select_option("")
    view.locator(".wb-filter-status").select_option("ERROR")
    assert view.locator(".wb-row .wb-name").all_inner_texts() == ["summarize_and_email", "send_email"]
    view.locator(".wb-filter-status").select_option("")
    assert view.locator(".wb-row").count() == 4

    # keyboard: arrows move the cursor, Enter selects, Left/Right close and open
    row(view, "summarize_and_email").click()
    page.keyboard.press("ArrowDown")
    assert "wb-active" in row(view, "retrieve").get_attribute("class")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    detail.locator(".wb-detail-name", has_text="fake/echo").wait_for()
    assert "wb-selected" in row(view, "fake/echo").get_attribute("class")
    page.keyboard.press("ArrowLeft")  # a leaf: up to its parent
    assert "wb-active" in row(view, "summarize_and_email").get_attribute("class")
    page.keyboard.press("ArrowLeft")  # open parent: closes
    assert view.locator(".wb-row").count() == 1
    page.keyboard.press("ArrowRight")
    assert view.locator(".wb-row").count() == 4
    # the notebook did not take the keys: still the same cell, no new cell, nothing in edit mode
    assert notebook.panel.locator(".jp-Notebook.jp-mod-editMode").count() == 0
    assert notebook.panel.locator(".jp-Notebook .jp-Cell").count() == len(CELLS)

    row(view, "send_email").click()
    save_screenshot(view, "trace-light")


# 3 -------------------------------------------------------------------------------------------------
def test_the_failed_tool_and_its_ancestors_are_red(notebook: Notebook) -> None:
    view = trace_view(notebook.output(INDEX["trace"]))
    failed = row(view, "send_email")
    assert "wb-failed" in failed.get_attribute("class")
    assert "ValueError: Invalid address" in failed.locator(".wb-row-error").inner_text()
    red = rgb(failed.locator(".wb-name").evaluate("n => getComputedStyle(n).color"))
    assert red[0] > red[1] + 80 and red[0] > red[2] + 80, red
    root = row(view, "summarize_and_email")
    assert re.search(r"wb-failed|wb-error-path", root.get_attribute("class"))
    assert rgb(root.locator(".wb-name").evaluate("n => getComputedStyle(n).color")) == red
    for fine in ("retrieve", "fake/echo"):
        assert "wb-failed" not in row(view, fine).get_attribute("class")
    bar = failed.locator(".wb-bar")
    assert "wb-bar-error" in bar.get_attribute("class")


# 4 -------------------------------------------------------------------------------------------------
def test_markup_in_an_answer_stays_text_in_the_answer_and_the_trace(notebook: Notebook) -> None:
    page = notebook.page
    output = run(notebook, "xss")
    output.locator(".wb-footer").wait_for()
    text = output.inner_text()
    assert '<img src=x onerror="window.__xss=1">' in text and "<script>window.__xss=2</script>" in text, text
    assert output.locator("img").count() == 0 and output.locator("script").count() == 0
    view = trace_view(run(notebook, "xss_trace"))
    row(view, "fake/echo").click()
    detail = view.locator(".wb-detail")
    detail.locator(".wb-section-outputs").wait_for()
    assert XSS in detail.locator(".wb-section-outputs").inner_text()
    view.locator(".wb-search").fill("onerror")
    assert view.locator(".wb-match-count").inner_text() == "1 of 1"
    assert view.locator("img").count() == 0 and view.locator("script").count() == 0
    page.wait_for_timeout(300)
    assert xss_fired(page) is None
    assert not [e for e in page.errors if "__xss" in e]


def test_fallback_attempts_are_visible(notebook: Notebook) -> None:
    run(notebook, "fallback").locator(".wb-footer").wait_for()
    view = trace_view(run(notebook, "fallback_trace"))
    call = row(view, "fake/fail")
    assert "fallback → fake/echo" in call.locator(".wb-tag-fallback").inner_text()
    assert "wb-error-path" in call.get_attribute("class")  # it holds failures, though it answered
    attempts = view.locator(".wb-row.wb-failed.wb-attempt")
    assert attempts.count() == 3
    assert attempts.locator(".wb-tag-attempt").all_inner_texts() == ["failed try"] * 3
    assert "ServiceUnavailableError" in attempts.first.locator(".wb-row-error").inner_text()
    detail = view.locator(".wb-detail")
    assert "Fallback" in detail.inner_text() and "Failed attempts" in detail.inner_text()


def test_an_attempt_is_marked_by_its_attribute_not_by_its_name(notebook: Notebook) -> None:
    view = trace_view(run(notebook, "named_attempt"))
    assert "wb-attempt" not in row(view, "my step (attempt 1)").get_attribute("class")
    assert "wb-attempt" in row(view, "fake/fail").get_attribute("class")


def test_newer_schema_versions_render_what_they_can_else_the_html_fallback(notebook: Notebook) -> None:
    output = run(notebook, "future")
    newer = output.locator(".wb-traceview").first
    newer.locator(".wb-row .wb-name", has_text="future span").wait_for()
    assert newer.locator(".wb-row .wb-kind").inner_text() == "SPAN"  # a kind it does not know
    fallback = output.locator(".wb-traceview").nth(1)
    assert "Showing the plain view" in fallback.locator(".wb-fallback-note").inner_text()
    assert fallback.locator("b.shown-fallback").inner_text() == "the html fallback"


def test_a_1000_span_trace_renders_only_the_rows_on_screen_and_fits_a_narrow_output(notebook: Notebook) -> None:
    page = notebook.page
    view = trace_view(run(notebook, "big"))
    assert "1,000 spans" in view.locator(".wb-summary").inner_text()
    view.locator(".wb-expand-all").click()
    tree = view.locator(".wb-tree")
    assert view.locator(".wb-tree-spacer").evaluate("n => n.offsetHeight") == 1000 * 24
    assert view.locator(".wb-row").count() < 60  # only what is on screen (plus a few) is in the DOM
    row(view, "big_pipeline").click()
    page.keyboard.press("End")
    last = row(view, "step 1000")
    last.wait_for()
    assert "wb-active" in last.get_attribute("class")
    assert tree.evaluate("n => n.scrollTop") > 20000
    assert view.locator(".wb-row").count() < 60
    view.locator(".wb-search").fill("step 500")
    assert view.locator(".wb-match-count").inner_text() == "1 of 1"
    view.locator(".wb-detail-name", has_text="step 500").wait_for()
    # a narrow output area: the compact layout (detail under the tree, no token and cost columns)
    page.set_viewport_size({"width": 640, "height": 960})
    page.wait_for_function("() => document.querySelector('.wb-traceview.wb-compact') !== null")
    assert not view.locator(".wb-tree-header .wb-tokens").is_visible()
    tree_box, detail_box = tree.bounding_box(), view.locator(".wb-detail").bounding_box()
    assert detail_box["y"] >= tree_box["y"] + tree_box["height"] - 1
    page.set_viewport_size({"width": 1280, "height": 960})
    view.locator(".wb-collapse-all").click()
    expect(view.locator(".wb-row")).to_have_count(1)  # the tree re-renders on the next frame: wait for it


# 5 -------------------------------------------------------------------------------------------------
def test_thumbs_up_under_an_answer_is_stored_in_mlflow(notebook: Notebook) -> None:
    if importlib.util.find_spec("workbench.notebook.signals_bar") is None:
        pytest.skip("the signals bar (workbench.notebook.signals_bar) is not in this version")
    output = notebook.output(INDEX["hello"])
    thumbs = output.locator('button[title="good answer"]')
    assert thumbs.count() == 1, ("no thumbs-up button under the %%llm answer: the magic's display does not show "
                                 "workbench.notebook.signals_bar.signals_bar(response) yet")
    thumbs.click()
    output.get_by_text("stored").wait_for()
    printed = run(notebook, "assessments")
    printed.get_by_text("ASSESSMENTS=").wait_for()
    found = json.loads(printed.inner_text().split("ASSESSMENTS=", 1)[1].strip().splitlines()[0])
    assert ["thumbs", True] in found, found


# 6 -------------------------------------------------------------------------------------------------
def test_status_bar_shows_the_spend_calls_and_budget(notebook: Notebook) -> None:
    page = notebook.page
    item = page.locator('.wb-spend-status[data-wb-status="shown"]')
    item.wait_for()
    first = item.inner_text()
    match = re.search(r"LLM \$([\d.]+) · (\d+) calls?", first)
    assert match and float(match.group(1)) > 0 and int(match.group(2)) >= 1, first
    calls = int(match.group(2))
    run(notebook, "budget")
    run(notebook, "after_budget").locator(".wb-footer").wait_for()
    page.wait_for_function(
        "n => { const t = document.querySelector('.wb-spend-status').innerText;"
        " return t.includes('budget') && !t.includes(' ' + n + ' call'); }", arg=calls, timeout=30_000)
    text = item.inner_text()
    assert re.search(rf"LLM \$[\d.]+ · {calls + 1} calls · budget \$[\d.]+ of \$5\.00", text), text


def test_command_palette_opens_the_mlflow_ui(notebook: Notebook) -> None:
    page = notebook.page
    page.keyboard.press("Control+Shift+c")
    palette = page.locator(".lm-CommandPalette-input")
    palette.wait_for()
    palette.fill("MLflow UI")
    entry = page.locator(".lm-CommandPalette-item", has_text="Workbench: Open MLflow UI")
    entry.wait_for()
    with page.context.expect_page(timeout=120_000) as opened:
        entry.click()
    tab = opened.value
    tab.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/"), timeout=120_000)
    assert re.match(r"^http://127\.0\.0\.1:\d+/", tab.url), tab.url
    tab.close()


# 7 -------------------------------------------------------------------------------------------------
def test_dark_theme_trace_view_is_readable(notebook: Notebook) -> None:
    page = notebook.page
    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").click()
    page.locator(".lm-Menu-itemLabel", has_text="Theme").first.hover()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile("^JupyterLab Dark$")).click()
    page.wait_for_selector("body[data-jp-theme-light='false']", state="attached")
    page.wait_for_timeout(500)  # the theme's CSS swaps in
    view = trace_view(notebook.output(INDEX["trace"]))
    view.scroll_into_view_if_needed()
    background = rgb(view.evaluate("n => getComputedStyle(n).backgroundColor"))
    assert luminance(background) < 0.1, background
    for name in ("retrieve", "fake/echo"):
        color = rgb(row(view, name).locator(".wb-name").evaluate("n => getComputedStyle(n).color"))
        assert contrast(color, background) >= 4.5, (name, color, background)
    failed = rgb(row(view, "send_email").locator(".wb-name").evaluate("n => getComputedStyle(n).color"))
    assert contrast(failed, background) >= 3, failed
    detail_text = rgb(view.locator(".wb-detail .wb-fact-value").first.evaluate("n => getComputedStyle(n).color"))
    assert contrast(detail_text, background) >= 4.5
    save_screenshot(view, "trace-dark")
