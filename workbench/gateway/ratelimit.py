"""Rate limits (429): reading Retry-After, and handing them back to a caller that paces itself.

By default the gateway retries a 429 itself (retry.py's backoff, at least as long as Retry-After asks). A
caller that adapts its own concurrency (the evaluation runner) says `with defer_rate_limits():`; then a 429
is raised at once as `RateLimited`, carrying Retry-After, so the call is never retried twice over (once
here, once by the caller) and the caller's pacing sees every refusal.
"""

from __future__ import annotations

import contextlib
import contextvars
import email.utils
import time
from collections.abc import Iterator
from typing import Any

from workbench.errors import RateLimited

__all__ = ["defer_rate_limits", "deferred", "handed_back", "is_rate_limit", "retry_after_s"]

_MAX_HINT_S = 120.0
_defer: contextvars.ContextVar[bool] = contextvars.ContextVar("workbench_defer_rate_limits", default=False)


@contextlib.contextmanager
def defer_rate_limits() -> Iterator[None]:
    """Inside: a 429 is raised as RateLimited at once (no retry, no fallback), for the caller to pace."""
    token = _defer.set(True)
    try:
        yield
    finally:
        _defer.reset(token)


def deferred() -> bool:
    return _defer.get()


def is_rate_limit(exc: BaseException) -> bool:
    return type(exc).__name__ == "RateLimitError" or getattr(exc, "status_code", None) == 429


def _headers(exc: BaseException) -> dict[str, str]:
    found: dict[str, str] = {}
    response = getattr(exc, "response", None)
    for source in (getattr(response, "headers", None), getattr(exc, "litellm_response_headers", None),
                   getattr(exc, "headers", None)):
        try:
            found.update({str(k).lower(): str(v) for k, v in dict(source or {}).items()})
        except (TypeError, ValueError):
            continue
    return found


def retry_after_s(exc: BaseException) -> float | None:
    """Seconds the provider asked to wait (retry-after-ms, Retry-After in seconds or as an HTTP date), capped."""
    headers = _headers(exc)
    try:
        if "retry-after-ms" in headers:
            return min(_MAX_HINT_S, max(0.0, float(headers["retry-after-ms"]) / 1000))
        raw = headers.get("retry-after")
        if raw is None:
            return None
        try:
            return min(_MAX_HINT_S, max(0.0, float(raw)))
        except ValueError:
            when = email.utils.parsedate_to_datetime(raw)
            return min(_MAX_HINT_S, max(0.0, when.timestamp() - time.time()))
    except (TypeError, ValueError, OverflowError):
        return None


def handed_back(model: str, attempts: list[Any], exc: BaseException) -> RateLimited:
    wait = retry_after_s(exc)
    hint = f"retry after {wait:.3f} s" if wait is not None else "no Retry-After given"
    return RateLimited(f"{model} is rate-limited (429, {hint}); the caller paces and retries", attempts=attempts,
                       retry_after_s=wait)
