"""The comment box of the signals bar: what is stored is what the box showed when Enter or "send" was pressed.

ipywidgets sends a Text's value as state, throttled to one message in flight per widget (later keystrokes
wait in the browser until the kernel says idle), but sends Enter ("submit") and a button click at once, as
custom messages. So Enter after quick typing reaches the kernel before the last letters do: reading
`text.value` in the submit handler stored "t" of "too vague". Here a submit locks the box (nothing typed
after Enter counts), waits until the value has been quiet for QUIET_S (the browser's buffered value arrives
within a round trip of the kernel going idle), then stores it and says what was stored.

The wait runs on the kernel's own event loop (main thread, between messages), never on a thread; without a
kernel (a plain IPython shell, tests) there is no throttled frontend and the value is stored at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["CommentBox", "QUIET_S", "MAX_WAIT_S"]

QUIET_S = 0.4  # the value unchanged this long after Enter: the browser has nothing more to send
MAX_WAIT_S = 5.0  # a frontend that never sends: store what arrived
_POLL_S = 0.1


def _kernel_later() -> Callable[[float, Callable[[], None]], None] | None:
    """`call_later` of the running kernel's IOLoop, or None outside a kernel."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    loop = getattr(getattr(get_ipython(), "kernel", None), "io_loop", None)
    return None if loop is None else loop.call_later


class CommentBox:
    """A Text plus a "send" button; `store(text)` is called once per submit with the settled text and
    returns the line to show (or raises; `report(line, ok)` shows either)."""

    def __init__(self, w: Any, store: Callable[[str], str], report: Callable[[str, bool], None],
                 later: Callable[[float, Callable[[], None]], None] | None = None) -> None:
        self.text = w.Text(placeholder="comment (Enter sends)", continuous_update=True,
                           layout=w.Layout(width="16em"))
        self.send = w.Button(description="send", tooltip="store the comment", layout=w.Layout(width="auto"))
        self._store, self._report = store, report
        self._later = later if later is not None else _kernel_later()
        self._pending = False
        self._started = self._changed = 0.0
        self.text.on_submit(lambda _: self.submit())
        self.send.on_click(lambda _: self.submit())
        self.text.observe(self._on_value, names="value")

    @property
    def widgets(self) -> list[Any]:
        return [self.text, self.send]

    @property
    def pending(self) -> bool:
        return self._pending

    def _on_value(self, _: Any) -> None:
        if self._pending:
            self._changed = time.monotonic()

    def submit(self) -> None:
        if self._pending:  # Enter and then the button: one comment
            return
        if self._later is None:
            self._finish()
            return
        self._pending = True
        self.text.disabled = True  # what is typed after Enter is not part of this comment
        self._started = self._changed = time.monotonic()
        self._later(_POLL_S, self._check)

    def _check(self) -> None:
        now = time.monotonic()
        if now - self._changed < QUIET_S and now - self._started < MAX_WAIT_S:
            assert self._later is not None
            self._later(_POLL_S, self._check)
            return
        self._finish()

    def _finish(self) -> None:
        comment = self.text.value
        try:
            if not comment.strip():
                self._report("write a comment first, then press Enter", False)
                return
            try:
                line = self._store(comment)
            except Exception as exc:  # shown in the bar: a click handler's exception would vanish into the log
                self._report(f"{type(exc).__name__}: {exc}", False)
                return
            self.text.value = ""
            self._report(line, True)
        finally:
            self._pending = False
            self.text.disabled = False
