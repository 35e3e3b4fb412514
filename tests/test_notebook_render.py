"""The notebook layer's pure parts: interpolation, JSON/code extraction, bundles, the live handle's throttle."""

from __future__ import annotations

import types

import pytest

from workbench.errors import ConfigError, WorkbenchError
from workbench.gateway.response import Attempt, Response
from workbench.notebook import display
from workbench.notebook.formats import extract_json, strip_fence
from workbench.notebook.interpolation import interpolate
from workbench.notebook.options import parse_cell_line

NS = {
    "name": "Ada",
    "price": 3.14159,
    "order": types.SimpleNamespace(id=7, items=["a", "b", "c"]),
    "ticket": {"id": 42, "text": "broken"},
    "tricky": "{name} stays",
    "In": ["", "x = 1", "y = 2"],
    "Out": {2: 99},
}


@pytest.mark.parametrize(
    "template, expected",
    [
        ("Hi {name}", "Hi Ada"),
        ("{price:.2f} {price:>8.1f}", "3.14      3.1"),
        ("{order.id} {order.items[1]} {order.items[-1]}", "7 b c"),
        ("{ticket[id]} {ticket['text']} {ticket[\"text\"]}", "42 broken broken"),
        ("{name!r}", "'Ada'"),
        ('{{"label": "{name}"}}', '{"label": "Ada"}'),
        ("{tricky}", "{name} stays"),  # exactly once: an inserted value is never interpolated again
        ("{In[1]} / {Out[2]}", "x = 1 / 99"),
        ("no fields at all", "no fields at all"),
    ],
)
def test_interpolation(template, expected):
    assert interpolate(template, NS).text == expected


def test_interpolation_records_names_for_lineage():
    rendered = interpolate("{name} {order.id} {name} {In[1]}", NS)
    assert rendered.names == ("name", "order", "In")
    assert rendered.fields == ("name", "order.id", "name", "In[1]")
    assert rendered.template == "{name} {order.id} {name} {In[1]}"


@pytest.mark.parametrize(
    "template, needle",
    [
        ("{missing}", "'missing'"),
        ("{order.nope}", "'nope'"),
        ("{ticket[nokey]}", "'nokey'"),
        ("{order.items[9]}", "[9]"),
        ("{name:.2f}", "'.2f'"),
        ("{}", "{}"),
        ("{0}", "{0}"),
        ("a { b", "{{"),
        ("a } b", "{{"),
    ],
)
def test_interpolation_errors_name_the_field(template, needle):
    with pytest.raises(ConfigError) as caught:
        interpolate(template, NS)
    assert needle in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "answer, value",
    [
        ('{"a": 1}', {"a": 1}),
        ("[1, 2]", [1, 2]),
        ('```json\n{"a": [1, 2]}\n```', {"a": [1, 2]}),
        ('Sure, here it is: {"ok": true}. Anything else?', {"ok": True}),
        ('Note {not json} then {"real": 1}', {"real": 1}),
    ],
)
def test_extract_json(answer, value):
    assert extract_json(answer) == value


def test_extract_json_fails_clearly():
    with pytest.raises(WorkbenchError, match="holds no JSON"):
        extract_json("no json here", "fake/echo")


def test_strip_fence():
    assert strip_fence("```python\nprint(1)\n```") == ("print(1)", "python")
    assert strip_fence("Here:\n~~~\ncode\n~~~\nbye") == ("code", "")
    assert strip_fence("print(2)\n") == ("print(2)", "")


def test_parse_cell_line_defaults_and_repeats():
    options = parse_cell_line("")
    assert options.models == [] and options.format == "markdown" and options.cache and not options.stream
    options = parse_cell_line('-m a/b -m c/d --fallback e/f -t k=v -t j=w -s "x y" --no-cache --stream -o out')
    assert options.models == ["a/b", "c/d"] and options.fallbacks == ["e/f"]
    assert options.tags == {"k": "v", "j": "w"} and options.system == "x y" and options.out == "out"
    assert options.params() == {}


def _response(**changes) -> Response:
    base = dict(text="hi", model="fake/fail", model_used="fake/echo", prompt_tokens=3, completion_tokens=4,
                cost_usd=0.0000123, latency_ms=1520.0)
    base.update(changes)
    return Response(**base)


def test_footer_says_model_tokens_cost_latency_cache_and_fallback():
    response = _response(cache_hit=True, fell_back=True,
                         attempts=[Attempt("fake/fail", "ServiceUnavailableError", "down", 1.0)])
    assert display.footer_text(response) == (
        "fake/echo · 7 tokens (3 in, 4 out) · $0.0000123 · 1.5 s · cache hit · fallback: fake/fail failed"
    )
    assert "unpriced" in display.footer_text(_response(cost_usd=None))


def test_every_bundle_has_plain_text_and_escapes_model_text():
    evil = "<script>alert(1)</script> & <b>x</b>"
    for fmt in ("markdown", "text", "json", "code"):
        column = display.Column("m", state="done", text=evil, response=_response(text=evil),
                                value=evil if fmt == "code" else {"k": evil})
        data, metadata = display.render([column], fmt)
        assert set(data) == {"text/plain", "text/html"}
        assert "<script>" not in data["text/html"] and "<b>" not in data["text/html"]
        assert metadata["workbench"]["model_used"] == "fake/echo"
    column = display.Column("m", state="done", text=evil, response=_response(text=evil))
    assert "<b>x</b>" in display.render([column], "html")[0]["text/html"]  # only the explicit opt-in


def test_error_bundle_is_one_escaped_line():
    data, metadata = display.error_bundle(ConfigError("bad <value>\n on two lines"))
    assert data["text/plain"] == "ConfigError: bad <value> on two lines"
    assert "&lt;value&gt;" in data["text/html"]
    assert metadata["workbench"]["error"] == "ConfigError"


def test_live_display_throttles_updates(monkeypatch):
    shown: list[tuple[str, dict]] = []

    class Handle:
        def update(self, data, **kwargs):
            shown.append(("update", data))

    def fake_display(data, **kwargs):
        shown.append(("display", data))
        return Handle()

    import IPython.display

    monkeypatch.setattr(IPython.display, "display", fake_display)
    clock = iter([0.0, 0.05, 0.10, 0.20, 0.21, 0.22])
    monkeypatch.setattr(display.time, "monotonic", lambda: next(clock))
    live = display.LiveDisplay()
    assert live.show({"text/plain": "0"}, {})
    results = [live.show({"text/plain": str(i)}, {}, force=False) for i in range(1, 5)]
    assert results == [False, False, True, False]  # at most one update per 150 ms
    assert live.show({"text/plain": "final"}, {})  # the final update always goes out
    assert [kind for kind, _ in shown] == ["display", "update", "update"]
    assert shown[-1][1]["text/plain"] == "final"
