"""Setups that run once, before the first call through the gateway finishes: where higher floors hook in.

The gateway never imports tracing (a higher floor). The package face registers "import workbench.tracing" here
(tracing adds its call observer when imported), so every call is traced by default while `import workbench` loads
neither the gateway nor tracing. This module imports nothing of ours: the face imports it at `import workbench`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["before_first_call", "ready"]

_lock = threading.Lock()
_setups: list[Callable[[], object]] = []
_ready = False


def before_first_call(setup: Callable[[], object]) -> None:
    """Run `setup()` once before the first call finishes (or now, when a call already has)."""
    with _lock:
        if not _ready:
            _setups.append(setup)
            return
    setup()


def ready() -> None:
    """Run the pending setups (once); the gateway calls this before notifying observers."""
    global _ready
    if _ready:
        return
    with _lock:
        if _ready:
            return
        found = list(_setups)
        _setups.clear()
        _ready = True
    for setup in found:
        setup()
