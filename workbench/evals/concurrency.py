"""Adaptive concurrency for an evaluation: additive increase, multiplicative decrease (AIMD) on 429s.

The runner starts `concurrency` workers, but only `limit` of them may have a call in flight. Each answered call
raises the limit by 1/limit (about +1 per round of calls); a 429 halves it, once per round (429s from calls that
started before the last cut do not cut again, or a burst of refusals would collapse it to 1), and every worker
waits until the moment Retry-After names. The refused call is then made again, by the same worker: the row is
never lost, and the provider answers it once. The gateway itself does not retry these 429s (`defer_rate_limits`),
so no call is retried twice over.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from workbench.errors import RateLimited
from workbench.gateway.ratelimit import defer_rate_limits

__all__ = ["AdaptiveLimit", "Stopped", "limited", "use_limit"]

T = TypeVar("T")
_FALLBACK_WAIT_S = 1.0  # a 429 without Retry-After: wait this, doubling while they continue
_MAX_WAIT_S = 60.0
_current: contextvars.ContextVar[tuple[AdaptiveLimit, threading.Event] | None] = contextvars.ContextVar(
    "workbench_eval_limit", default=None)


class Stopped(Exception):
    """The evaluation was stopped while this call waited for a slot (not an error: the row is dropped)."""


class AdaptiveLimit:
    def __init__(self, maximum: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.maximum = maximum
        self.limit = float(maximum)
        self.lowest = maximum
        self.in_flight = 0
        self.resume_at = 0.0
        self.refusals = 0
        self._round = 0
        self._quiet_waits = 0  # consecutive 429s without Retry-After
        self._clock = clock
        self._cond = threading.Condition()

    def acquire(self, stop: threading.Event) -> int:
        """Wait for a slot (and for any Retry-After to pass); returns the round the call starts in."""
        with self._cond:
            while True:
                if stop.is_set():
                    raise Stopped
                wait = self.resume_at - self._clock()
                if wait > 0:
                    self._cond.wait(min(wait, 0.2))
                elif self.in_flight < int(self.limit):
                    self.in_flight += 1
                    return self._round
                else:
                    self._cond.wait(0.2)

    def answered(self) -> None:
        with self._cond:
            self.in_flight -= 1
            self.limit = min(float(self.maximum), self.limit + 1.0 / max(self.limit, 1.0))
            self._quiet_waits = 0
            self._cond.notify_all()

    def failed(self) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify_all()

    def refused(self, started_round: int, retry_after_s: float | None) -> None:
        with self._cond:
            self.in_flight -= 1
            self.refusals += 1
            if started_round == self._round:  # one cut per round of calls
                self.limit = max(1.0, self.limit / 2)
                self.lowest = min(self.lowest, int(self.limit))
                self._round += 1
            if retry_after_s is None:
                retry_after_s = min(_MAX_WAIT_S, _FALLBACK_WAIT_S * 2 ** self._quiet_waits)
                self._quiet_waits += 1
            self.resume_at = max(self.resume_at, self._clock() + min(retry_after_s, _MAX_WAIT_S))
            self._cond.notify_all()

    def call(self, fn: Callable[[], T], stop: threading.Event) -> T:
        """fn() in a slot; a 429 (RateLimited) waits as asked and calls again; anything else is raised."""
        while True:
            started = self.acquire(stop)
            try:
                with defer_rate_limits():
                    result = fn()
            except RateLimited as exc:
                self.refused(started, exc.retry_after_s)
                continue
            except BaseException:
                self.failed()
                raise
            self.answered()
            return result

    def describe(self) -> str:
        """For the progress line: '' until the first 429, then e.g. 'concurrency 16 -> 4, waiting on rate limit'."""
        with self._cond:
            if not self.refusals:
                return ""
            waiting = ", waiting on rate limit" if self.resume_at > self._clock() else ""
            return f" · concurrency {self.maximum} -> {int(self.limit)}{waiting} · {self.refusals} rate-limited"


def use_limit(limit: AdaptiveLimit, stop: threading.Event) -> contextvars.Token[Any]:
    """Make `limited()` calls in this context go through `limit` (set in each worker's copied context)."""
    return _current.set((limit, stop))


def limited(fn: Callable[[], T]) -> T:
    """fn() through the evaluation's adaptive limit when one is active in this context, else as it is."""
    active = _current.get()
    if active is None:
        return fn()
    limit, stop = active
    return limit.call(fn, stop)
