"""The signals bar under a `%%llm` answer: thumbs, stars, edit answer, comment, add to golden; and, under a
several-model cell, "pick the better answer". Each click is one `workbench.feedback(...)` call.

`signals_bar(responses)` returns an ipywidgets widget whose MIME bundle also carries text/plain and
text/html saying how to give the same feedback from Python, so headless runs and exported notebooks stay
readable. Without ipywidgets it returns that fallback alone.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

from workbench.notebook.golden_magics import row_from_call

__all__ = ["signals_bar", "SignalsFallback"]

_OK = "color:#2e7d32"
_BAD = "color:#c62828"


def _as_list(responses: Any) -> list[Any]:
    if isinstance(responses, dict):
        return [r for r in responses.values() if r is not None]
    if isinstance(responses, Sequence) and not isinstance(responses, str):
        return [r for r in responses if r is not None]
    return [responses] if responses is not None else []


class SignalsFallback:
    """The text/HTML form of the bar: the Python calls that record the same signals."""

    def __init__(self, responses: list[Any]) -> None:
        self.responses = responses

    def lines(self) -> list[str]:
        traced = [r for r in self.responses if getattr(r, "trace_id", None)]
        if not traced:
            return ["feedback needs tracing (it is off): no trace to attach signals to"]
        lines = [f"feedback: workbench.feedback({r.trace_id!r}, thumbs=True, stars=5, correction='...', "
                 "comment='...')" for r in traced[:1]]
        if len(traced) > 1:
            lines.append(f"pick the better answer: workbench.feedback({traced[0].trace_id!r}, "
                         f"preferred_over={traced[1].trace_id!r})")
        return lines

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        text = "\n".join(self.lines())
        body = "".join(f"<div><code>{html.escape(line)}</code></div>" for line in self.lines())
        return {"text/plain": text, "text/html": f'<div class="wb-signals" style="color:#757575;font-size:0.85em">'
                                                 f"{body}</div>"}


def _say(label: Any, message: str, ok: bool = True) -> None:
    label.value = f"<span style='{_OK if ok else _BAD}'>{html.escape(message)}</span>"


def _guarded(label: Any, action: Callable[[], str]) -> Callable[..., None]:
    """A click handler that reports in the bar: a callback's exception would otherwise vanish into the log."""

    def handler(_: Any = None) -> None:
        try:
            _say(label, action())
        except Exception as exc:
            _say(label, f"{type(exc).__name__}: {exc}", ok=False)

    return handler


def _one_bar(w: Any, response: Any, status: Any, golden_name: str) -> Any:
    from workbench.datasets.golden import golden as golden_dataset  # on first use: %load_ext stays light
    from workbench.signals.collect import feedback

    trace_id = response.trace_id
    up = w.Button(description="👍", tooltip="good answer", layout=w.Layout(width="3em"))
    down = w.Button(description="👎", tooltip="bad answer", layout=w.Layout(width="3em"))
    stars = w.ToggleButtons(options=["1", "2", "3", "4", "5"], value=None, tooltips=["stars"] * 5,
                            style={"button_width": "2.2em"})
    edit = w.Button(description="edit answer", layout=w.Layout(width="auto"))
    comment = w.Text(placeholder="comment (Enter sends)", layout=w.Layout(width="16em"))
    golden = w.Button(description="+ golden", tooltip=f"add to the golden dataset {golden_name!r}",
                      layout=w.Layout(width="auto"))
    editor = w.Textarea(value=response.text, layout=w.Layout(width="100%", height="6em", display="none"))
    save_edit = w.Button(description="save correction", layout=w.Layout(width="auto", display="none"))

    up.on_click(_guarded(status, lambda: (feedback(trace_id, thumbs=True), "thanks: 👍 stored")[1]))
    down.on_click(_guarded(status, lambda: (feedback(trace_id, thumbs=False), "thanks: 👎 stored")[1]))

    def starred(change: dict[str, Any]) -> None:
        if change.get("new"):
            _guarded(status, lambda: (feedback(trace_id, stars=int(change["new"])),
                                      f"{change['new']} star(s) stored")[1])()

    stars.observe(starred, names="value")

    def toggle(_: Any) -> None:
        shown = editor.layout.display != "none"
        editor.layout.display = save_edit.layout.display = "none" if shown else ""

    edit.on_click(toggle)
    save_edit.on_click(_guarded(status, lambda: (feedback(trace_id, correction=editor.value),
                                                 "correction stored (it becomes training data)")[1]))
    comment.on_submit(_guarded(status, lambda: (feedback(trace_id, comment=comment.value),
                                                "comment stored")[1]))

    def add_golden() -> str:
        dataset = golden_dataset(golden_name)
        dataset.add(row_from_call(response), editor.value or response.text, source=trace_id)
        return f"added to golden {golden_name!r} ({len(dataset)} rows, unverified)"

    golden.on_click(_guarded(status, add_golden))
    return w.VBox([w.HBox([up, down, stars, edit, comment, golden]), editor, save_edit])


def signals_bar(responses: Any, *, golden_name: str = "golden") -> Any:
    """The bar for one Response, a list of them, or a {model: Response} dict (several models: one row of
    controls per answer plus a winner pick). Answers without a trace (tracing off) get the text fallback."""
    items = _as_list(responses)
    fallback = SignalsFallback(items)
    traced = [r for r in items if getattr(r, "trace_id", None)]
    try:
        import ipywidgets as w
    except ImportError:
        return fallback
    if not traced:
        return fallback
    status = w.HTML()
    parts: list[Any] = []
    for response in traced:
        bar = _one_bar(w, response, status, golden_name)
        if len(traced) > 1:
            parts.append(w.HTML(f"<b>{html.escape(response.model)}</b>"))
        parts.append(bar)
    if len(traced) > 1:
        from workbench.signals.collect import feedback

        labels = [f"{i + 1}: {r.model}" for i, r in enumerate(traced)]
        pick = w.ToggleButtons(options=labels, value=None, description="better:")

        def picked(change: dict[str, Any]) -> None:
            if not change.get("new"):
                return
            winner = traced[labels.index(change["new"])]
            losers = [r.trace_id for r in traced if r is not winner]
            _guarded(status, lambda: (feedback(winner.trace_id, preferred_over=losers),
                                      f"preference stored: {winner.model} is better")[1])()

        pick.observe(picked, names="value")
        parts.append(pick)
    parts.append(status)

    class SignalsBar(w.VBox):  # the widget where a frontend runs widgets; the calls above where none does
        def _repr_mimebundle_(self, **kwargs: Any) -> Any:
            bundle = super()._repr_mimebundle_(**kwargs)
            if isinstance(bundle, dict):
                bundle.update(fallback._repr_mimebundle_())
            return bundle

    return SignalsBar(parts)
