"""The rollouts of this process, by name: routing adds them, the monitor reads their state and share.

Its own module so that routing (which builds reports) and monitor (which reads a live rollout) need not import
each other.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.traffic.routing import Rollout

__all__ = ["put", "rollouts", "get_rollout"]

_lock = threading.Lock()
_rollouts: dict[str, Rollout] = {}


def put(rollout: Rollout) -> Rollout | None:
    """Make `rollout` the live one under its name; returns the one it replaces."""
    with _lock:
        previous = _rollouts.get(rollout.name)
        _rollouts[rollout.name] = rollout
    return previous


def rollouts() -> dict[str, Rollout]:
    """The rollouts of this process, by name."""
    with _lock:
        return dict(_rollouts)


def get_rollout(name: str) -> Rollout | None:
    with _lock:
        return _rollouts.get(name)
