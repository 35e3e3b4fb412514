"""The first local answer prepares the bundled model (20-25 s): the cell says so, with progress, once.

`%load_ext workbench` registers this module (OPTIONAL_MAGIC_MODULES); it subscribes to the provider floor's
progress registry (workbench.providers.local.progress) and shows one display per preparation in the running
cell, updated in place (at most every ~150 ms), ending with "ready". Reports from another thread are not shown
(display() belongs to the main thread); the preparation itself never waits on the display.
"""

from __future__ import annotations

import html
import threading
import time
from typing import Any

from workbench.providers.local.progress import ModelProgress, add_listener
from workbench.verbatim import NO_MATH

__all__ = ["register", "unregister", "ModelProgressDisplay"]

_INTERVAL_S = 0.15


class ModelProgressDisplay:
    """One display handle per model being prepared."""

    def __init__(self) -> None:
        self._handles: dict[str, Any] = {}
        self._last: dict[str, float] = {}

    def __call__(self, progress: ModelProgress) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        now = time.monotonic()
        handle = self._handles.get(progress.model)
        if handle is not None and not progress.done and now - self._last.get(progress.model, 0.0) < _INTERVAL_S:
            return
        self._last[progress.model] = now
        bundle = self.bundle(progress)
        if handle is None:
            from IPython.display import display

            self._handles[progress.model] = display(bundle, raw=True, display_id=True)
        else:
            handle.update(bundle, raw=True)
        if progress.done:
            self._handles.pop(progress.model, None)

    @staticmethod
    def bundle(progress: ModelProgress) -> dict[str, str]:
        percent = round(progress.fraction * 100)
        if progress.done and progress.message != "failed":
            line = (f"local/{progress.model} is ready: prepared once in {progress.elapsed_s:.0f} s "
                    "(converted to a cache every later call loads in under a second)")
        elif progress.done:
            line = f"local/{progress.model}: preparing the model failed after {progress.elapsed_s:.0f} s (see below)"
        else:
            line = (f"Preparing local/{progress.model} once (first use, {progress.about}): {progress.message}... "
                    f"{percent}%")
        bar = "" if progress.done else (f'<progress value="{percent}" max="100" '
                                        'style="width:14em;vertical-align:middle"></progress> ')
        return {"text/plain": line,
                "text/html": f'<div class="wb-model-progress {NO_MATH}" style="color:#757575;font-size:0.9em">'
                             f"{bar}{html.escape(line)}</div>"}


_remove: Any = None


def register(ipython: Any) -> None:
    global _remove
    if _remove is None:
        _remove = add_listener(ModelProgressDisplay())


def unregister(ipython: Any) -> None:
    global _remove
    if _remove is not None:
        _remove()
        _remove = None
