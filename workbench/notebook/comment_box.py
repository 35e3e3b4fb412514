"""The comment box of the signals bar: what is stored is what the box showed when Enter or "send" was pressed.

ipywidgets sends a Text's value as state, throttled to one message in flight per widget (later keystrokes
wait in the browser until the kernel says idle), but sends Enter ("submit") and a click at once, as custom
messages: with the value synced on every key, Enter after quick typing reached the kernel before the last
letters did, and `text.value` in the submit handler stored "t" of "too vague".

So the box syncs its value only when the browser commits it (`continuous_update=False`: on Enter or when
the box loses focus), and Enter or "send" waits for that commit. On Enter the browser sends "submit" and
then the committed value; a click on "send" takes the focus from the box, which commits its value, but the
click (sent at once) can overtake that value (ipywidgets serializes state asynchronously). Either way, the
value that arrives armed is exactly the box's text at that moment, and it is stored from that message's own
handler. Where no value follows (nothing typed since the box last committed), the text the kernel already
has is the box's text, and it is stored after a short wait.

Updates to the bar are made from the handler of the message that caused them: ipykernel 7 runs widget
messages in a subshell thread, and updates sent later from another thread did not always reach the page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["CommentBox", "NO_VALUE_WAIT_S"]

NO_VALUE_WAIT_S = 0.6  # after Enter: no committed value within this time means the kernel's text is current


def _kernel_later() -> Callable[[float, Callable[[], None]], None] | None:
    """`call_later` on the running kernel's IOLoop, callable from any thread, or None outside a kernel."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    loop = getattr(getattr(get_ipython(), "kernel", None), "io_loop", None)
    if loop is None:
        return None

    def later(delay: float, callback: Callable[[], None]) -> None:
        loop.add_callback(loop.call_later, delay, callback)  # add_callback is thread-safe; call_later is not

    return later


class CommentBox:
    """A Text plus a "send" button; `store(text)` is called once per submit with the text the box showed and
    returns the line to show (or raises); `report(line, ok)` shows either."""

    def __init__(self, w: Any, store: Callable[[str], str], report: Callable[[str, bool], None],
                 later: Callable[[float, Callable[[], None]], None] | None = None) -> None:
        self.text = w.Text(placeholder="comment (Enter sends)", continuous_update=False,
                           layout=w.Layout(width="16em"))
        self.send = w.Button(description="send", tooltip="store the comment", layout=w.Layout(width="auto"))
        self._store, self._report = store, report
        self._later = later if later is not None else _kernel_later()
        self._armed = 0  # which submit waits for its value (0: none)
        self._submits = 0
        self._stored: str | None = None  # the text last stored, so a repeated Enter stores nothing twice
        self.text.on_submit(lambda _: self._on_submit())
        self.send.on_click(lambda _: self._on_submit())
        self.text.observe(self._on_value, names="value")

    @property
    def widgets(self) -> list[Any]:
        return [self.text, self.send]

    @property
    def pending(self) -> bool:
        return self._armed != 0

    def _on_submit(self) -> None:
        if self._later is None:  # no kernel, no browser in between: the value is current
            self._finish()
            return
        self._submits += 1
        self._armed = number = self._submits
        self._later(NO_VALUE_WAIT_S, lambda: self._no_value_came(number))

    def _on_value(self, change: dict[str, Any]) -> None:
        if self._armed and change.get("new"):
            self._armed = 0
            self._finish()

    def _no_value_came(self, number: int) -> None:
        if self._armed == number:
            self._armed = 0
            if self.text.value != self._stored:
                self._finish()

    def _finish(self) -> None:
        comment = self.text.value
        if not comment.strip():
            self._report("write a comment first, then press Enter", False)
            return
        try:
            line = self._store(comment)
        except Exception as exc:  # shown in the bar: a click handler's exception would vanish into the log
            self._report(f"{type(exc).__name__}: {exc}", False)
            return
        self._stored = comment
        self._report(line, True)
