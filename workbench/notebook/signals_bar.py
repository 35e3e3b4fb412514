"""The signals bar under a `%%llm` answer: thumbs, stars, edit answer, comment, add to golden; and, under a
several-model cell, "pick the better answer". Each click is one `workbench.feedback(...)` call.

Thumbs are one toggle (ToggleButtons: the pressed one shows, and is widget state, so it survives the output
being drawn again); the last choice wins, in MLflow too (feedback() overrides the earlier one). A bar made
again for the same answer starts from the stored choice. Labels carry words beside the emoji, for systems
without an emoji font. The comment box stores what it showed on Enter (see comment_box.py).

`signals_bar(responses)` returns an ipywidgets widget whose MIME bundle also carries text/plain and
text/html saying how to give the same feedback from Python, so headless runs and exported notebooks stay
readable. Without ipywidgets it returns that fallback alone.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

from workbench.notebook.comment_box import CommentBox
from workbench.notebook.golden_magics import row_from_call
from workbench.verbatim import NO_MATH

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
        return {"text/plain": text,
                "text/html": f'<div class="wb-signals {NO_MATH}" style="color:#757575;font-size:0.85em">{body}</div>'}


def _say(label: Any, message: str, ok: bool = True) -> None:
    label.value = f"<span class='{NO_MATH}' style='{_OK if ok else _BAD}'>{html.escape(message)}</span>"


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
    before_thumbs, before_stars = _stored(trace_id, "thumbs"), _stored(trace_id, "stars")
    thumbs = w.ToggleButtons(options=[("👍 good", True), ("👎 bad", False)], value=before_thumbs,
                             tooltips=["good answer", "bad answer"], style={"button_width": "5.5em"})
    stars = w.ToggleButtons(options=["1", "2", "3", "4", "5"],
                            value=None if before_stars is None else str(before_stars), tooltips=["stars"] * 5,
                            style={"button_width": "2.2em"})
    edit = w.Button(description="edit answer", layout=w.Layout(width="auto"))
    comment = CommentBox(w, lambda text: (feedback(trace_id, comment=text), f"comment stored: {text!r}")[1],
                         lambda line, ok: _say(status, line, ok))
    golden = w.Button(description="+ golden", tooltip=f"add to the golden dataset {golden_name!r}",
                      layout=w.Layout(width="auto"))
    editor = w.Textarea(value=response.text, layout=w.Layout(width="100%", height="6em", display="none"))
    save_edit = w.Button(description="save correction", layout=w.Layout(width="auto", display="none"))

    def chosen(change: dict[str, Any]) -> None:
        new = change.get("new")
        if new is None:
            return
        try:
            feedback(trace_id, thumbs=new)
        except Exception as exc:  # not stored: the buttons must not say otherwise
            thumbs.unobserve(chosen, names="value")
            thumbs.value = change.get("old")
            thumbs.observe(chosen, names="value")
            _say(status, f"{type(exc).__name__}: {exc}", ok=False)
            return
        _say(status, f"thanks: {'👍 good' if new else '👎 bad'} stored" + (
            " (replaces your earlier choice)" if change.get("old") is not None else ""))

    thumbs.observe(chosen, names="value")

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

    def add_golden() -> str:
        dataset = golden_dataset(golden_name)
        dataset.add(row_from_call(response), editor.value or response.text, source=trace_id)
        return f"added to golden {golden_name!r} ({len(dataset)} rows, unverified)"

    golden.on_click(_guarded(status, add_golden))
    bar = w.VBox([w.HBox([thumbs, stars, edit, *comment.widgets, golden]), editor, save_edit])
    bar.comment_box = comment  # tests and callers reach the box's state through the bar
    return bar


def _stored(trace_id: str, kind: str) -> Any:
    """This person's stored choice of a kind on the trace, or None (nothing stored, or no journal yet)."""
    from workbench.signals.collect import stored_choice

    return stored_choice(trace_id, kind)


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
