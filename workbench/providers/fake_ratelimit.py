"""`fake/ratelimit?rpm=N[&burst=B]`: a provider that rate-limits like a real one, for tests and benchmarks.

A token bucket per model string: it holds `burst` calls (default: one second's worth, rpm/60, at least 1) and
refills at rpm/60 calls a second. A call that finds a token is answered (an echo); one that finds none gets a
429 with `Retry-After` (seconds, fractional) and `retry-after-ms` saying exactly when the next token arrives.
No randomness: given the moments the calls arrive, what is refused is determined. Thread-safe; `served()`
counts the answered calls per prompt, so a test can prove no row was called twice.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field

__all__ = ["admit", "imposed_s", "refused", "reset_buckets", "served"]

_lock = threading.Lock()


@dataclass
class _Bucket:
    rate: float  # tokens per second
    capacity: float
    tokens: float
    last: float
    served: collections.Counter[str] = field(default_factory=collections.Counter)
    refused: int = 0


_buckets: dict[str, _Bucket] = {}


def _capacity(rpm: float, burst: str | None, model: str) -> float:
    if burst is None:
        return max(1.0, rpm / 60.0)
    try:
        value = float(burst)
    except ValueError:
        value = 0.0
    if value < 1:
        raise _bad_request(f"fake/{model}: burst={burst!r} must be a number >= 1", model)
    return value


def _bad_request(message: str, model: str) -> Exception:
    import litellm

    return litellm.BadRequestError(message=message, llm_provider="fake", model=f"fake/{model}")


def admit(model: str, rpm: float, burst: str | None, prompt: str) -> Exception | None:
    """None when the call may be answered; else the 429 to raise."""
    if not rpm > 0:
        raise _bad_request(f"fake/{model}: rpm={rpm!r} must be > 0, e.g. fake/ratelimit?rpm=600", model)
    now = time.monotonic()
    with _lock:
        bucket = _buckets.get(model)
        if bucket is None:
            capacity = _capacity(rpm, burst, model)
            bucket = _buckets[model] = _Bucket(rpm / 60.0, capacity, capacity, now)
        bucket.tokens = min(bucket.capacity, bucket.tokens + (now - bucket.last) * bucket.rate)
        bucket.last = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            bucket.served[prompt] += 1
            return None
        bucket.refused += 1
        wait_s = (1 - bucket.tokens) / bucket.rate
    return _too_many(model, rpm, wait_s)


def _too_many(model: str, rpm: float, wait_s: float) -> Exception:
    import litellm

    headers = {"retry-after": f"{wait_s:.3f}", "retry-after-ms": f"{wait_s * 1000:.0f}"}
    return litellm.RateLimitError(message=f"fake/{model}: rate limit of {rpm:g} requests per minute reached; retry "
                                  f"after {wait_s:.3f} s (simulated)", llm_provider="fake", model=f"fake/{model}",
                                  headers=headers)


def served(model: str) -> collections.Counter[str]:
    """Answered calls per prompt text for one `fake/ratelimit?...` model string."""
    with _lock:
        bucket = _buckets.get(model.removeprefix("fake/"))
        return collections.Counter(bucket.served) if bucket else collections.Counter()


def refused(model: str) -> int:
    with _lock:
        bucket = _buckets.get(model.removeprefix("fake/"))
        return bucket.refused if bucket else 0


def imposed_s(calls: int, rpm: float, burst: float | None = None) -> float:
    """The least time `calls` answered calls take under this limit, starting with a full bucket."""
    capacity = max(1.0, rpm / 60.0) if burst is None else burst
    return max(0.0, (calls - capacity) / (rpm / 60.0))


def reset_buckets() -> None:
    with _lock:
        _buckets.clear()
