"""A progress line in the cell while the bundled model is prepared once ("preparing the bundled model once: 40 %").

Subscribes to the provider floor's registry (providers/local/progress.py) when `%load_ext workbench` loads this module.
One display handle per preparation, updated at most every half second, ending on a line that says it is done; no
clear_output, so a saved notebook keeps that last line. Only the kernel's main thread displays (a model loading on a
worker thread, e.g. an evaluation's, just loads).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from workbench.providers.local.progress import ModelProgress, add_listener

__all__ = ["ProgressLine", "register", "unregister"]

_MIN_INTERVAL_S = 0.5


class ProgressLine:
    """Turns ModelProgress reports into one updating text output."""

    def __init__(self) -> None:
        self._handle: Any = None
        self._shown_at = 0.0

    def __call__(self, progress: ModelProgress) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        from IPython.display import display

        if progress.done:
            if self._handle is not None:
                verb = "prepared" if progress.fraction >= 1.0 else "could not prepare"
                self._handle.update({"text/plain": f"{verb} the bundled model {progress.model} once in "
                                                   f"{progress.elapsed_s:.0f} s"}, raw=True)
            self._handle = None
            return
        now = time.monotonic()
        line = {"text/plain": f"preparing the bundled model {progress.model} once: {progress.fraction * 100:.0f} % "
                              f"({progress.message})"}
        if self._handle is None:
            self._handle = display(line, raw=True, display_id=True)
            self._shown_at = now
        elif now - self._shown_at >= _MIN_INTERVAL_S:
            self._handle.update(line, raw=True)
            self._shown_at = now


_remove: Any = None


def register(ipython: Any) -> None:
    global _remove
    if _remove is None:
        _remove = add_listener(ProgressLine())


def unregister(ipython: Any) -> None:
    global _remove
    if _remove is not None:
        _remove()
        _remove = None
