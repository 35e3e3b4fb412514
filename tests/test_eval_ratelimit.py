"""Rate limits: the `fake/ratelimit` provider, the gateway's handling of 429, and the runner's AIMD pacing."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest

import workbench
from workbench.errors import ProviderError, RateLimited
from workbench.evals.concurrency import AdaptiveLimit, Stopped
from workbench.gateway.ratelimit import defer_rate_limits
from workbench.providers import fake_ratelimit

pytestmark = pytest.mark.usefixtures("module_mlflow_store")


def test_the_fake_limit_is_exact_under_threads():
    model = "ratelimit?rpm=0.001&burst=10"  # ten tokens, no refill to speak of
    outcomes: list[bool] = []
    lock = threading.Lock()

    def hammer(worker: int) -> None:
        for i in range(50):
            refused = fake_ratelimit.admit(model, 0.001, "10", f"{worker}-{i}") is not None
            with lock:
                outcomes.append(refused)

    threads = [threading.Thread(target=hammer, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count(False) == 10 and outcomes.count(True) == 390
    assert sum(fake_ratelimit.served(model).values()) == 10 and fake_ratelimit.refused(model) == 390


def test_a_429_carries_retry_after_and_the_gateway_honours_it():
    slow = "fake/ratelimit?rpm=6&burst=1"  # a token every 10 s: the second call is refused, however busy the machine
    workbench.complete("first", slow, cache=False)
    with defer_rate_limits(), pytest.raises(RateLimited) as caught:  # handed back at once, no retry
        workbench.complete("second", slow, cache=False)
    assert 5 < caught.value.retry_after_s <= 10 and "retry after" in str(caught.value)
    assert fake_ratelimit.refused(slow) == 1
    model = "fake/ratelimit?rpm=120&burst=1"  # a token every 0.5 s
    started = time.perf_counter()
    workbench.complete("third", model, cache=False)
    answer = workbench.complete("fourth", model, cache=False)  # refused once, then retried after Retry-After
    assert answer.text == "fourth" and len(answer.attempts) == 1 and answer.attempts[0].error_type == "RateLimitError"
    assert time.perf_counter() - started >= 0.45  # the backoff is 0 in tests: only Retry-After made it wait
    workbench.configure(max_retries=0)
    with pytest.raises(ProviderError, match="rate limit"):
        workbench.complete("fifth", slow, cache=False)


def test_aimd_halves_once_per_round_and_waits_as_asked():
    now = [100.0]
    limit = AdaptiveLimit(16, clock=lambda: now[0])
    stop = threading.Event()
    rounds = [limit.acquire(stop) for _ in range(4)]
    limit.refused(rounds[0], 2.0)
    limit.refused(rounds[1], 2.0)  # started before the cut: no second cut
    assert limit.limit == 8 and limit.resume_at == 102.0
    assert limit.describe() == " · concurrency 16 -> 8, waiting on rate limit · 2 rate-limited"
    now[0] = 103.0
    assert limit.describe() == " · concurrency 16 -> 8 · 2 rate-limited"
    limit.answered()
    assert limit.limit == pytest.approx(8 + 1 / 8)
    stop.set()
    with pytest.raises(Stopped):  # a stopped evaluation does not wait out a rate limit
        limit.acquire(stop)


def test_a_429_storm_loses_no_row_and_calls_each_once(capsys, monkeypatch):
    from workbench.evals import progress

    monkeypatch.setattr(progress, "in_notebook", lambda: False)  # the progress line on stderr, even after a shell
    model = "fake/ratelimit?rpm=1200&burst=5"  # 20 calls a second
    data = pd.DataFrame({"input": [f"row {i}" for i in range(60)], "expected": [f"row {i}" for i in range(60)]})
    result = workbench.evaluate(data, model, concurrency=8, cache=False, scorers=["exact_match"])
    line = capsys.readouterr().err
    assert result.table["output"].notna().all() and result.mean("exact_match") == 1.0
    served = fake_ratelimit.served(model)
    assert len(served) == 60 and set(served.values()) == {1}  # every row answered exactly once
    refused = fake_ratelimit.refused(model)
    assert refused > 0 and "concurrency 8 -> " in line
    # every 429 at the provider was paced by the runner, none retried by the gateway behind its back
    assert f"{refused} calls rate-limited and made again" in line
