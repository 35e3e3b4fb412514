"""The seam between the gateway and tracing: observers see each finished call as a plain record.

Observers run in the caller's thread and context right after the call (so a tracer can find the
user's open span), must be cheap, and can return a trace id for the Response. An observer that
raises is reported once and never breaks a call.

The gateway never imports tracing (a higher floor): tracing adds its observer when it is imported, and the
package face registers the import of tracing with `first_call.before_first_call`.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import WorkbenchWarning
from workbench.gateway.response import Attempt, Response
from workbench.secrets import redact

__all__ = ["CallRecord", "add_observer", "remove_observer", "notify", "has_observers"]


@dataclass
class CallRecord:
    model: str  # as asked
    messages: list[dict[str, Any]]
    params: dict[str, Any]  # answer-changing params, credentials removed
    tags: dict[str, str]
    started_at: float  # epoch seconds
    ended_at: float
    attempts: list[Attempt] = field(default_factory=list)
    response: Response | None = None
    error: BaseException | None = None
    stream: bool = False


Observer = Callable[[CallRecord], "str | None"]
_observers: list[Observer] = []
_lock = threading.Lock()
_broken: set[int] = set()
def has_observers() -> bool:
    return bool(_observers)


def add_observer(observer: Observer) -> None:
    with _lock:
        if observer not in _observers:
            _observers.append(observer)


def remove_observer(observer: Observer) -> None:
    with _lock:
        if observer in _observers:
            _observers.remove(observer)


def notify(record: CallRecord) -> str | None:
    """Tell every observer; return the first trace id one of them gives back."""
    trace_id = None
    for observer in list(_observers):
        try:
            result = observer(record)
        except Exception as exc:  # an observer must never break a call
            if id(observer) not in _broken:
                _broken.add(id(observer))
                warnings.warn(f"call observer {observer!r} failed: {redact(str(exc))} (later failures of it are not "
                              "reported)", WorkbenchWarning, stacklevel=2)
            continue
        if trace_id is None and result:
            trace_id = result
    return trace_id
