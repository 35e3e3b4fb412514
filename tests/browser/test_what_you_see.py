"""Issue 12 in real Chromium: what the user sees is what happened.

Dollar amounts stay dollars (JupyterLab's MathJax is live here: `-f math` shows it typesets), also in a
reopened, untrusted copy; a comment typed at 20 ms a key and sent at once is stored whole; thumbs are one
toggle whose last choice wins; span names stay readable with the file browser open; the arrow keys move the
selection with the detail pane; the footer's `%trace tr-…` opens the trace. One notebook, cells run in order.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from lab import Lab, Notebook

pytestmark = pytest.mark.browser  # make test-fast leaves it out: JupyterLab in Chromium

PLANS = "The basic plan costs $5 a month and the pro plan $10 a month."
TRACE_MIME = "application/vnd.workbench.trace+json"

PIPELINE = '''\
import time
import workbench as wb

@wb.traced(kind="retriever")
def retrieve(question):
    time.sleep(0.05)
    return ["chunk 1: revenue grew", "chunk 2: costs fell"]

@wb.traced(kind="tool")
def send_email(to, body):
    raise ValueError("Invalid address")

try:
    with wb.span("summarize_and_email", kind="chain", inputs={"request": "Summarize this PDF and email it"}):
        chunks = retrieve("Summarize this PDF")
        summary = wb.complete("Summarize: " + " ".join(chunks), "fake/echo")
        send_email("bob@", summary.text)
except ValueError as exc:
    print(f"email failed: {exc}")'''

READ_SIGNALS = '''\
import json
from workbench.tracking.backend import backend, current_uri
from workbench.tracing import exporter
exporter.flush()
stored = backend(current_uri()).client.get_trace(RATED.trace_id)
rows = sorted([a.name, getattr(a, "value", None), a.valid] for a in stored.info.assessments)
print("ASSESSMENTS=" + json.dumps(rows))'''

CELLS = {
    "load": "%load_ext workbench",
    "math": "%%llm -m fake/echo -f math\nPythagoras: $x^2 + y^2 = z^2$",
    "plans": f"%%llm -m fake/echo\n{PLANS}",
    "budget": "%llm budget 0.00000001 project=tiny",
    "refused": "%%llm -m fake/echo -t project=tiny --no-cache\nIs $5 or $10 too much?",
    "failed": "%%llm -m fake/fail\nAre you there?",
    "failed_trace": "%trace",
    "pipeline": PIPELINE,
    "pipeline_trace": "%trace",
    "rated": "%%llm -m fake/echo -o RATED\nRate this answer",
    "signals": READ_SIGNALS,
    "redraw": "from workbench.notebook.signals_bar import signals_bar\nsignals_bar(RATED)",
}
INDEX = {name: i for i, name in enumerate(CELLS)}


@pytest.fixture(scope="module")
def notebook(lab: Lab, page: Any) -> Notebook:
    lab.write_notebook("seen.ipynb", list(CELLS.values()))
    opened = Notebook(page, lab, "seen.ipynb").open()
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


def signals(notebook: Notebook) -> list[list[Any]]:
    printed = run(notebook, "signals")
    printed.get_by_text("ASSESSMENTS=").wait_for()
    return json.loads(printed.inner_text().split("ASSESSMENTS=", 1)[1].strip().splitlines()[0])


def assert_verbatim(output: Any, text: str) -> None:
    expect(output).to_contain_text(text)
    assert output.locator("mjx-container").count() == 0, output.inner_html()[:2000]


# 1 -------------------------------------------------------------------------------------------------
def test_dollar_amounts_stay_dollars_live_and_in_a_reopened_untrusted_copy(notebook: Notebook, lab: Lab) -> None:
    page = notebook.page
    # MathJax is alive in this page: the explicit opt-in is typeset
    maths = run(notebook, "math")
    maths.locator("mjx-container").first.wait_for(timeout=30_000)
    plans = run(notebook, "plans")
    plans.locator(".wb-footer").wait_for()
    run(notebook, "budget")
    refused = run(notebook, "refused")
    refused.get_by_text("BudgetExceeded: refused").wait_for()
    page.wait_for_timeout(1500)  # typesetting is asynchronous: give it every chance
    assert_verbatim(plans, PLANS)
    assert_verbatim(plans.locator(".wb-footer"), "$0.0000")  # the footer's own cost
    assert_verbatim(refused, "is $0.00000001 and $0.00 is spent")

    # saved, then reopened from a copy the server did not sign: untrusted, its HTML sanitized
    page.keyboard.press("Control+s")
    page.wait_for_timeout(1500)
    saved = lab.read_notebook("seen.ipynb")
    lab.api("PUT", "/api/contents/seen-copy.ipynb", {"type": "notebook", "format": "json", "content": saved})
    tab = page.context.new_page()  # a tab of its own: the notebook the other tests use stays as it is
    try:
        copy = Notebook(tab, lab, "seen-copy.ipynb").open()
        copy.output(INDEX["math"]).locator("mjx-container").first.wait_for(timeout=30_000)
        tab.wait_for_timeout(1500)
        assert_verbatim(copy.output(INDEX["plans"]), PLANS)
        assert_verbatim(copy.output(INDEX["refused"]), "is $0.00000001 and $0.00 is spent")
    finally:
        tab.close()
    page.bring_to_front()


# 11 ------------------------------------------------------------------------------------------------
def test_a_trace_whose_only_call_failed_counts_it(notebook: Notebook) -> None:
    run(notebook, "failed").get_by_text("ProviderError").wait_for()
    view = trace_view(run(notebook, "failed_trace"))
    assert "1 LLM call, 1 failed" in view.locator(".wb-summary").inner_text()


# 12 ------------------------------------------------------------------------------------------------
def test_span_names_stay_readable_at_1280_px_with_the_file_browser_open(notebook: Notebook) -> None:
    page = notebook.page
    run(notebook, "pipeline").get_by_text("email failed").wait_for()
    view = trace_view(run(notebook, "pipeline_trace"))
    page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id='filebrowser']").click()
    page.locator("#filebrowser").wait_for(state="visible")
    page.wait_for_timeout(600)  # the output area resizes, the view lays itself out again
    assert page.viewport_size["width"] == 1280
    names = view.locator(".wb-row .wb-name")
    assert names.all_inner_texts() == ["summarize_and_email", "retrieve", "fake/echo", "send_email"]
    cut = names.evaluate_all("ns => ns.filter(n => n.scrollWidth > n.clientWidth).map(n => n.textContent)")
    assert cut == [], f"span names cut short: {cut}"
    # the divider drags: the list gets wider, the names stay whole, the detail keeps a readable width
    pane, divider = view.locator(".wb-tree-pane"), view.locator(".wb-divider")
    before = pane.bounding_box()["width"]
    box = divider.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 20)
    page.mouse.down()
    page.mouse.move(box["x"] - 80, box["y"] + 20, steps=4)
    page.mouse.up()
    assert pane.bounding_box()["width"] == pytest.approx(before - 80, abs=12)
    divider.dblclick()  # back to the automatic split
    assert pane.bounding_box()["width"] == pytest.approx(before, abs=2)
    page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id='filebrowser']").click()  # closed again
    page.wait_for_timeout(300)


# 13 ------------------------------------------------------------------------------------------------
def test_arrow_keys_move_the_selection_and_the_detail_follows(notebook: Notebook) -> None:
    page = notebook.page
    view = trace_view(notebook.output(INDEX["pipeline_trace"]))
    detail = view.locator(".wb-detail")
    row(view, "summarize_and_email").click()
    detail.locator(".wb-detail-name", has_text="summarize_and_email").wait_for()
    page.keyboard.press("ArrowDown")
    detail.locator(".wb-detail-name", has_text="retrieve").wait_for()
    assert "wb-selected" in row(view, "retrieve").get_attribute("class")
    page.keyboard.press("ArrowDown")
    detail.locator(".wb-detail-name", has_text="fake/echo").wait_for()
    assert "chunk 1: revenue grew" in detail.locator(".wb-section-outputs").inner_text()
    page.keyboard.press("End")
    detail.locator(".wb-detail-name", has_text="send_email").wait_for()
    page.keyboard.press("ArrowUp")
    detail.locator(".wb-detail-name", has_text="fake/echo").wait_for()
    assert "wb-selected" in row(view, "fake/echo").get_attribute("class")
    assert "wb-selected" not in row(view, "send_email").get_attribute("class")
    assert notebook.panel.locator(".jp-Notebook.jp-mod-editMode").count() == 0  # the notebook kept out of it


# 2, 3 ---------------------------------------------------------------------------------------------
def test_thumbs_are_a_toggle_and_a_fast_comment_is_stored_exactly(notebook: Notebook, lab: Lab) -> None:
    page = notebook.page
    output = run(notebook, "rated")
    up, down = output.locator('button[title="good answer"]'), output.locator('button[title="bad answer"]')
    up.wait_for()
    assert "good" in up.inner_text() and "bad" in down.inner_text()  # words beside the emoji
    up.click()
    output.get_by_text("👍 good stored").wait_for()
    down.click()
    output.get_by_text("replaces your earlier choice").wait_for()
    expect(down).to_have_class(re.compile(r"\bmod-active\b"))
    expect(up).not_to_have_class(re.compile(r"\bmod-active\b"))

    box = output.locator('input[placeholder="comment (Enter sends)"]')
    box.click()
    box.press_sequentially("too vague", delay=20)
    page.keyboard.press("Enter")
    output.get_by_text("comment stored: 'too vague'").wait_for(timeout=30_000)
    # right after another click (a star), 20 ms a key, then the button
    output.locator('button[title="stars"]', has_text="4").click()
    box.click()
    page.keyboard.press("Control+a")  # the box still shows the stored comment: type over it
    box.press_sequentially("nice and short", delay=20)
    output.locator("button", has_text=re.compile("^send$")).click()
    output.get_by_text("comment stored: 'nice and short'").wait_for(timeout=30_000)

    stored = signals(notebook)
    assert sorted(v for n, v, _ in stored if n == "comment") == ["nice and short", "too vague"], stored
    assert sorted([v, valid] for n, v, valid in stored if n == "thumbs") == [[False, True], [True, False]], stored

    # drawn again for the same answer: the last choice shows pressed
    redrawn = run(notebook, "redraw").locator('button[title="bad answer"]')
    redrawn.wait_for()
    expect(redrawn).to_have_class(re.compile(r"\bmod-active\b"))
    expect(run(notebook, "redraw").locator('button[title="good answer"]')).not_to_have_class(
        re.compile(r"\bmod-active\b"))


# 13 (footer) -------------------------------------------------------------------------------------
def test_the_footers_trace_id_opens_the_trace_with_a_click(notebook: Notebook) -> None:
    # last in the module: it adds a cell under the answer, which moves the cells after it
    plans = notebook.output(INDEX["plans"])
    link = plans.locator(".wb-footer .wb-trace-link")
    link.scroll_into_view_if_needed()
    trace_id = re.search(r"tr-[0-9a-f]+", link.text_content()).group(0)
    count = notebook.panel.locator(".jp-Notebook .jp-Cell").count()
    link.click()
    expect(notebook.panel.locator(".jp-Notebook .jp-Cell")).to_have_count(count + 1)
    added = notebook.cell(INDEX["plans"] + 1)
    expect(added.locator(".jp-InputArea-editor")).to_contain_text(f"%trace {trace_id}")
    view = trace_view(added.locator(".jp-OutputArea"))
    row(view, "fake/echo").wait_for()
    link.click()  # again: the same cell runs again, no second one
    notebook.page.wait_for_timeout(1000)
    expect(notebook.panel.locator(".jp-Notebook .jp-Cell")).to_have_count(count + 1)


# 9 -------------------------------------------------------------------------------------------------
def test_the_status_bar_says_it_counts_this_kernel_and_clears_when_the_kernel_restarts(notebook: Notebook) -> None:
    # last in the module: it restarts the kernel
    page = notebook.page
    item = page.locator('.wb-spend-status[data-wb-status="shown"]')
    item.wait_for()
    assert item.inner_text().startswith("this kernel: LLM $"), item.inner_text()
    assert "every notebook sharing the home" in item.get_attribute("title")
    page.locator(".lm-MenuBar-itemLabel", has_text="Kernel").click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Restart Kernel\W*$")).click()
    page.locator(".jp-Dialog-button.jp-mod-accept").click()
    page.locator('.wb-spend-status[data-wb-status="hidden"]').wait_for(state="attached", timeout=30_000)
    notebook.wait_idle()
    page.wait_for_timeout(1000)  # asked again once idle: a fresh kernel without Workbench stays hidden
    assert page.locator('.wb-spend-status[data-wb-status="shown"]').count() == 0
