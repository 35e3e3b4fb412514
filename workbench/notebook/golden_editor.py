"""`%golden edit NAME`: review a golden dataset row by row (ipywidgets); every change is written at once.

Headless (nbclient, exported HTML) the editor shows as a text/HTML table with how to edit from Python.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from workbench.datasets.rows import input_text

if TYPE_CHECKING:
    from workbench.datasets.golden import GoldenDataset

__all__ = ["editor", "EditorFallback"]


class EditorFallback:
    """What shows where widgets cannot run: the rows, and the Python calls that edit them."""

    def __init__(self, dataset: GoldenDataset) -> None:
        self.dataset = dataset

    def _how(self) -> str:
        return (f"edit with workbench.golden({self.dataset.name!r}).update(row_id, expected=..., verified=True) "
                "or .remove(row_id)")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": f"{self.dataset!r}\n{self._how()}",
                "text/html": f"{self.dataset._repr_html_()}<div>{html.escape(self._how())}</div>"}


def _with_fallback(widget_class: type, fallback: EditorFallback) -> Any:
    class Editor(widget_class):
        def _repr_mimebundle_(self, **kwargs: Any) -> Any:
            bundle = super()._repr_mimebundle_(**kwargs)
            if isinstance(bundle, dict):  # the widget for live frontends; readable text/HTML for everyone else
                bundle.update(fallback._repr_mimebundle_())
            return bundle

    return Editor


def editor(dataset: GoldenDataset) -> Any:
    """An ipywidgets editor over `dataset`: previous/next, the input, the expected answer (editable), verified,
    save, delete. Falls back to a table when ipywidgets is missing."""
    try:
        import ipywidgets as w
    except ImportError:
        return EditorFallback(dataset)
    state: dict[str, Any] = {"index": 0, "rows": dataset.rows}
    position = w.Label()
    prompt = w.HTML()
    expected = w.Textarea(layout=w.Layout(width="100%", height="6em"), description="expected")
    verified = w.Checkbox(description="verified (a human checked it)")
    status = w.HTML()
    buttons = {name: w.Button(description=name, layout=w.Layout(width="auto"))
               for name in ("◀ previous", "next ▶", "save", "delete")}

    def show() -> None:
        rows = state["rows"]
        if not rows:
            position.value, prompt.value, expected.value = "no rows", "", ""
            return
        state["index"] = max(0, min(state["index"], len(rows) - 1))
        row = rows[state["index"]]
        position.value = f"row {state['index'] + 1} of {len(rows)} · {row.row_id}"
        prompt.value = f"<pre style='white-space:pre-wrap'>{html.escape(input_text(row.input))}</pre>"
        expected.value = row.expected or ""
        verified.value = row.verified

    def move(step: int) -> None:
        state["index"] += step
        status.value = ""
        show()

    def save(_: Any = None) -> None:
        rows = state["rows"]
        if not rows:
            return
        row = rows[state["index"]]
        try:
            rows[state["index"]] = dataset.update(row.row_id, expected=expected.value, verified=verified.value)
            status.value = "<span style='color:#2e7d32'>saved</span>"
        except Exception as exc:  # shown in the widget: a callback's exception would vanish into the log
            status.value = f"<span style='color:#c62828'>{html.escape(str(exc))}</span>"

    def delete(_: Any = None) -> None:
        rows = state["rows"]
        if rows:
            dataset.remove(rows[state["index"]].row_id)
            state["rows"] = dataset.rows
            status.value = "deleted"
            show()

    buttons["◀ previous"].on_click(lambda _: move(-1))
    buttons["next ▶"].on_click(lambda _: move(1))
    buttons["save"].on_click(save)
    buttons["delete"].on_click(delete)
    show()
    box = _with_fallback(w.VBox, EditorFallback(dataset))
    return box([w.HTML(f"<b>golden dataset {html.escape(dataset.name)}</b>"), position, prompt, expected, verified,
                w.HBox(list(buttons.values())), status])
