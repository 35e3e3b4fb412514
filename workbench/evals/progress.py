"""The one progress display for long work (evaluations, fine-tunes), updated from the caller's thread only.

In a notebook: one display handle whose last state is what the saved notebook keeps. In a terminal: one `\\r`
line on stderr. Elsewhere (a pipe, CI logs): silent until the final line. What is shown comes from a render
function of the work's state, called only when an update will really be shown (a loss-curve PNG costs ~0.1 s),
returning a MIME bundle whose text/plain is the one-line form.
"""

from __future__ import annotations

import html
import sys
import time
from collections.abc import Callable
from typing import Any

from workbench.verbatim import NO_MATH

__all__ = ["Progress", "Bundle", "in_notebook", "rows_view", "UPDATE_S"]

UPDATE_S = 0.2

Bundle = dict[str, str]  # MIME type -> data; text/plain is always there


def in_notebook() -> bool:
    """True inside an IPython shell (a kernel or a test's InteractiveShell). IPython is not imported here."""
    if "IPython" not in sys.modules:  # a library we never load ourselves: not loaded means no shell
        return False
    from IPython import get_ipython

    return get_ipython() is not None


class Progress:
    def __init__(self, render: Callable[..., Bundle], enabled: bool = True, update_s: float = UPDATE_S) -> None:
        self.render, self.update_s = render, update_s
        self._last = 0.0
        self._handle: Any = None
        self._mode = "off" if not enabled else "notebook" if in_notebook() else \
            "tty" if getattr(sys.stderr, "isatty", lambda: False)() else "quiet"

    def update(self, *state: Any, force: bool = False, **named: Any) -> None:
        """Show `render(*state, **named)`, at most every update_s unless forced."""
        now = time.perf_counter()
        if self._mode in ("off", "quiet") or (not force and now - self._last < self.update_s):
            return
        self._last = now
        bundle = self.render(*state, **named)
        if self._mode == "notebook":
            from IPython.display import display

            if self._handle is None:
                self._handle = display(bundle, raw=True, display_id=True)
            else:
                self._handle.update(bundle, raw=True)
        else:
            sys.stderr.write("\r" + bundle["text/plain"][:150])
            sys.stderr.flush()

    def close(self, *state: Any, **named: Any) -> None:
        """The final state: the display's last update, the terminal's last line, or the one line of a pipe."""
        if self._mode == "off":
            return
        if self._mode == "quiet":
            print(self.render(*state, **named)["text/plain"], file=sys.stderr)
            return
        self.update(*state, force=True, **named)
        if self._mode == "tty":
            sys.stderr.write("\n")


def rows_view(total: int, label: str) -> Callable[..., Bundle]:
    """An evaluation's progress: rows done of `total`, failures, elapsed time and rate, as a `<progress>` bar."""
    started = time.perf_counter()

    def render(done: int, failed: int = 0, state: str = "") -> Bundle:
        elapsed = time.perf_counter() - started
        rate = done / elapsed if elapsed > 0 else 0.0
        note = f", {failed} failed" if failed else ""
        line = f"{label}: {done}/{total} rows{note} · {elapsed:.1f} s · {rate:.1f} rows/s{state}"
        return {
            "text/plain": line,
            "text/html": f'<div class="wb-progress {NO_MATH}"><progress value="{done}" max="{max(total, 1)}" '
                         f'style="width:20em;vertical-align:middle"></progress> {html.escape(line)}</div>',
        }

    return render
