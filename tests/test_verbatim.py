"""Issue 12 item 1: dollar amounts are never typeset as maths in our HTML (live, reopened, nbconvert export).

MathJax (3 in JupyterLab, 2 in nbconvert's export) typesets `$...$` in every text node except under an element
with its ignore class. These tests read our HTML the way MathJax walks it: every text node that holds a `$`
must sit under `mathjax_ignore` (MathJax 3) and `tex2jax_ignore` (MathJax 2). The browser test
(tests/browser/test_what_you_see.py) checks the same in JupyterLab with its real MathJax.
"""

from __future__ import annotations

from html.parser import HTMLParser

import workbench as wb
from workbench import tracing
from workbench.notebook import display as show
from workbench.notebook.options import parse_cell_line
from workbench.notebook.signals_bar import SignalsFallback

PLANS = "The basic plan costs $5 a month and the pro plan $10 a month."


class _Walk(HTMLParser):
    """Text nodes with the classes of their ancestors."""

    VOID = {"br", "img", "hr", "input", "meta", "link", "wbr", "col", "area", "base", "source"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[set[str]] = []
        self.texts: list[tuple[str, set[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        classes = set((dict(attrs).get("class") or "").split())
        self.stack.append(classes)

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.texts.append((data, set().union(*self.stack) if self.stack else set()))


def typeset_texts(html: str) -> list[str]:
    """The text nodes holding a `$` that MathJax 2 or 3 would read (not under both ignore classes)."""
    walk = _Walk()
    walk.feed(html)
    return [text for text, classes in walk.texts
            if "$" in text and not {"mathjax_ignore", "tex2jax_ignore"} <= classes]


def answer(text: str, fmt: str = "markdown") -> dict[str, str]:
    response = wb.complete(text, "fake/echo")
    column = show.Column("fake/echo", state="done", text=response.text, response=response)
    return show.render([column], fmt)[0]


def test_answers_footers_and_errors_keep_their_dollars():
    for fmt in ("markdown", "text"):
        bundle = answer(PLANS, fmt)
        assert PLANS in bundle["text/html"]
        assert "$" in bundle["text/html"].split("wb-footer", 1)[1]  # the footer's cost is dollars too
        assert typeset_texts(bundle["text/html"]) == []
    two = [show.Column(m, state="done", text=PLANS, response=wb.complete(PLANS, "fake/echo")) for m in ("a", "b")]
    assert typeset_texts(show.render(two, "markdown")[0]["text/html"]) == []
    refused = wb.BudgetExceeded("refused: the budget is $0.0002 and $0.00019 is spent",
                                budget_usd=2e-4, spent_usd=1.9e-4)
    assert typeset_texts(show.error_bundle(refused)[0]["text/html"]) == []


def test_the_trace_fallback_and_tables_keep_their_dollars(monkeypatch):
    wb.set_price("fake/echo", input_per_1m=1.0, output_per_1m=2.0)
    wb.complete(PLANS, "fake/echo")
    view = tracing.show_trace()
    assert "$" in view.html and PLANS in view.html
    assert typeset_texts(view.html) == []
    golden = wb.golden("plans")
    golden.add(PLANS, "$5 and $10")
    assert typeset_texts(golden._repr_html_()) == []
    fallback = SignalsFallback([wb.complete(PLANS, "fake/echo")])._repr_mimebundle_()["text/html"]
    assert typeset_texts(fallback) == []


def test_maths_is_typeset_only_when_asked_for_with_f_math():
    assert parse_cell_line("-f math").format == "math"
    bundle = answer(r"Euler: $e^{i\pi} + 1 = 0$ and $a_1 + b_1$, $$\sum_i x_i$$")
    assert typeset_texts(bundle["text/html"]) == []  # the default (markdown) stays verbatim
    html = answer(r"Euler: $e^{i\pi} + 1 = 0$ and $a_1 + b_1$, $$\sum_i x_i$$", "math")["text/html"]
    left = typeset_texts(html)
    # the maths reaches MathJax as written (Markdown did not turn a_1 ... b_1 into emphasis) ...
    assert r"$e^{i\pi} + 1 = 0$" in "".join(left) and "$a_1 + b_1$" in "".join(left) and "<em>" not in html
    # ... and the footer's cost still does not
    assert all("tokens" not in text for text in left)


def test_nbconvert_html_export_keeps_the_dollars_out_of_mathjax():
    import nbconvert
    import nbformat
    bundle = answer(PLANS)
    refused = show.error_bundle(wb.BudgetExceeded("refused: $0.0002 budget, $0.00019 spent", budget_usd=2e-4,
                                                  spent_usd=1.9e-4))[0]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "%%llm -m fake/echo\n" + PLANS, outputs=[
            nbformat.v4.new_output("display_data", data=bundle),
            nbformat.v4.new_output("display_data", data=refused)])])
    exported, _ = nbconvert.HTMLExporter(template_name="lab").from_notebook_node(notebook)
    assert "MathJax" in exported  # the export does load MathJax (2) over the page
    body = exported.split('class="jp-Cell-outputWrapper"', 1)[1]
    assert PLANS in body
    assert typeset_texts(body) == []
