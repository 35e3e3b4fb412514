"""A progress display for long work, updated from the caller's thread only (never from workers).

In a notebook: one display handle (HTML `<progress>` plus a text/plain line), updated at most every
UPDATE_S, whose last state is what the saved notebook keeps. In a terminal: one `\\r` line on stderr.
Elsewhere (a pipe, CI logs): silent until the final line.
"""

from __future__ import annotations

import html
import sys
import time
from typing import Any

from workbench.verbatim import NO_MATH

__all__ = ["Progress", "in_notebook"]

UPDATE_S = 0.2


def in_notebook() -> bool:
    """True inside an IPython shell (a kernel or a test's InteractiveShell). IPython is not imported here."""
    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    return get_ipython() is not None


class Progress:
    def __init__(self, total: int, label: str, enabled: bool = True) -> None:
        self.total, self.label = total, label
        self.started = time.perf_counter()
        self._last = 0.0
        self._handle: Any = None
        self._mode = "off" if not enabled else "notebook" if in_notebook() else \
            "tty" if getattr(sys.stderr, "isatty", lambda: False)() else "quiet"

    def _line(self, done: int, failed: int, state: str) -> str:
        elapsed = time.perf_counter() - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        note = f", {failed} failed" if failed else ""
        return f"{self.label}: {done}/{self.total} rows{note} · {elapsed:.1f} s · {rate:.1f} rows/s{state}"

    def update(self, done: int, failed: int = 0, *, force: bool = False, state: str = "") -> None:
        now = time.perf_counter()
        if self._mode == "off" or (not force and now - self._last < UPDATE_S):
            return
        self._last = now
        line = self._line(done, failed, state)
        if self._mode == "notebook":
            bundle = {
                "text/plain": line,
                "text/html": f'<div class="wb-progress {NO_MATH}"><progress value="{done}" max="{max(self.total, 1)}" '
                             f'style="width:20em;vertical-align:middle"></progress> {html.escape(line)}</div>',
            }
            from IPython.display import display

            if self._handle is None:
                self._handle = display(bundle, raw=True, display_id=True)
            else:
                self._handle.update(bundle, raw=True)
        elif self._mode == "tty":
            sys.stderr.write("\r" + line[:150])
            sys.stderr.flush()

    def close(self, done: int, failed: int = 0, state: str = " · done") -> None:
        if self._mode == "off":
            return
        self.update(done, failed, force=True, state=state)
        if self._mode == "tty":
            sys.stderr.write("\n")
        elif self._mode == "quiet":
            print(self._line(done, failed, state), file=sys.stderr)
