"""Progress of slow one-time model work (converting the bundled GGUF), for whoever listens.

The provider floor cannot reach the notebook: it owns this registry, and the notebook layer (a higher floor)
subscribes when `%load_ext workbench` loads it, to show "preparing the bundled model once: 40 %" in the cell instead
of a silent `[*]`. Listeners are called on the thread doing the work; one that raises is dropped from that report
only, never stopping the load (a display problem must not cost the user the model).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

__all__ = ["ModelProgress", "ProgressListener", "add_listener", "report", "stage"]


@dataclass(frozen=True)
class ModelProgress:
    model: str  # e.g. "smollm2"
    fraction: float  # 0.0 .. 1.0; 1.0 once done
    message: str  # what is happening, e.g. "reading the weights"
    elapsed_s: float
    done: bool = False
    about: str = "about 20-25 s"  # how long this kind of preparation takes, for the user


ProgressListener = Callable[[ModelProgress], None]

_listeners: list[ProgressListener] = []
_lock = threading.Lock()


def add_listener(listener: ProgressListener) -> Callable[[], None]:
    """Subscribe; returns the function that unsubscribes."""
    with _lock:
        _listeners.append(listener)

    def remove() -> None:
        with _lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return remove


def report(progress: ModelProgress) -> None:
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(progress)
        except Exception:  # noqa: BLE001, S112 - see the module docstring: showing progress must not break loading
            continue


class stage:
    """Report a piece of slow work: `step(fraction, message)` while it runs, a final report when it ends."""

    def __init__(self, model: str, about: str = "about 20-25 s") -> None:
        self.model = model
        self.about = about
        self.start = time.perf_counter()
        self.last = 0.0

    def __call__(self, fraction: float, message: str) -> None:
        self.last = max(self.last, min(max(fraction, 0.0), 0.99))
        report(ModelProgress(self.model, self.last, message, time.perf_counter() - self.start, about=self.about))

    def __enter__(self) -> Self:
        self(0.0, "starting")
        return self

    def __exit__(self, *exc: object) -> None:
        failed = exc[0] is not None
        report(ModelProgress(self.model, self.last if failed else 1.0, "failed" if failed else "ready",
                             time.perf_counter() - self.start, done=True, about=self.about))
