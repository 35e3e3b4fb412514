"""Money under concurrency and faults (issue 11, items 1-4): budgets reserved before spending, tag keys with dots,
stopped calls counted, answers kept when the cache cannot store them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import pytest

import workbench as wb
from workbench.gateway import stores
from workbench.providers import fake

# 75 characters (with the " <i>" each call adds): the estimate is 75 // 4 + 1 = 19 prompt tokens plus max_tokens=20,
# at 1000 USD per million tokens $0.039; the real call (10 + 10 whitespace tokens, fake/ counting) costs $0.020.
# A budget of $0.05 has room for one call's estimate, not two.
PROMPT = "abcdefgh " * 8 + "x"
SLOW = "fake/slow?ms=400"
BUDGET = 0.05


def _price_the_slow_model() -> None:
    wb.set_price(SLOW, input_per_1m=1000, output_per_1m=1000)


def _race(threads: int) -> tuple[int, int]:
    """`threads` calls started at once under the budget; (answered, refused)."""
    barrier = threading.Barrier(threads)
    outcome: list[str] = []

    def one(i: int) -> None:
        barrier.wait()
        try:
            wb.complete(f"{PROMPT} {i}", SLOW, max_tokens=20, cache=False, tags={"project": "race"})
            outcome.append("ok")
        except wb.BudgetExceeded:
            outcome.append("refused")

    workers = [threading.Thread(target=one, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return outcome.count("ok"), outcome.count("refused")


def test_concurrent_threads_cannot_overspend_a_budget():
    _price_the_slow_model()
    wb.set_budget(usd=BUDGET, tag=("project", "race"))
    answered, refused = _race(8)
    assert (answered, refused) == (1, 7)
    spent = wb.spend(by="project").loc["race"]
    assert spent["cost_usd"] <= BUDGET and spent["answered"] == 1 and spent["refused"] == 7
    # the reservation was settled by the row: nothing stays reserved, and the real cost is what counts
    assert stores.ledger().reserved_usd() == 0
    assert stores.ledger().spent_usd(("project", "race")) == pytest.approx(0.020)


def test_a_failed_call_releases_its_reservation():
    wb.set_budget(usd=BUDGET)
    wb.set_price("fake/fail", input_per_1m=1000, output_per_1m=1000)
    for _ in range(3):  # three failures in a row would be refused if their reservations stayed
        with pytest.raises(wb.ProviderError):
            wb.complete(PROMPT, "fake/fail", max_tokens=20)
    assert stores.ledger().reserved_usd() == 0
    assert wb.complete(PROMPT, "fake/echo", max_tokens=20).text == PROMPT


_CHILD = textwrap.dedent("""
    import os, sys, threading, time
    import workbench as wb
    wb.set_price({slow!r}, input_per_1m=1000, output_per_1m=1000)
    start = float(sys.argv[1])
    barrier = threading.Barrier(8)
    answered = []
    def one(i):
        barrier.wait()
        time.sleep(max(0.0, start - time.time()))  # both processes start together
        try:
            wb.complete({prompt!r} + f" {{os.getpid()}} {{i}}", {slow!r}, max_tokens=20, cache=False,
                        tags={{"project": "race"}})
            answered.append(i)
        except wb.BudgetExceeded:
            pass
    workers = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    [w.start() for w in workers]
    [w.join() for w in workers]
    print("ANSWERED", len(answered))
""")


@pytest.mark.slow
def test_two_processes_of_eight_threads_cannot_overspend_a_budget(workbench_home, tmp_path):
    wb.set_budget(usd=BUDGET, tag=("project", "race"))
    script = tmp_path / "child.py"
    script.write_text(_CHILD.format(slow=SLOW, prompt=PROMPT))
    env = dict(os.environ, WORKBENCH_HOME=str(workbench_home), PYTHONPATH=str(Path(__file__).parents[1]))
    start = time.time() + 8.0  # time for both interpreters to import workbench and litellm
    children = [subprocess.Popen([sys.executable, str(script), str(start)], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [child.communicate(timeout=180) for child in children]
    answered = 0
    for child, (out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err[-2000:]
        answered += int(out.split("ANSWERED")[-1])
    assert answered == 1
    spent = wb.spend(by="project").loc["race"]
    assert spent["cost_usd"] <= BUDGET and (spent["answered"], spent["refused"]) == (1, 15)


@pytest.mark.parametrize("key", ["cost.center", "workbench.role", 'a"quote', "with space", "$.x[0]"])
def test_a_budget_on_any_tag_key_is_enforced_and_spend_groups_by_it(key):
    wb.set_budget(usd=0.00002, tag=(key, "cc-1"))
    wb.complete("first call here", "fake/echo", tags={key: "cc-1"})  # $0.000009
    wb.complete("second call here", "fake/echo", tags={key: "cc-1"})  # $0.000018
    with pytest.raises(wb.BudgetExceeded, match="cc-1"):
        wb.complete("third call would go over " * 3, "fake/echo", tags={key: "cc-1"})
    wb.complete("untagged", "fake/echo")
    by_key = wb.spend(by=key)
    assert by_key.loc["cc-1", "calls"] == 3 and by_key.loc["cc-1", "cost_usd"] == pytest.approx(0.000018)
    assert by_key.loc["(untagged)", "calls"] == 1
    assert stores.ledger().spent_usd((key, "cc-1")) == pytest.approx(0.000018)


def _last_row() -> dict:
    return wb.calls(1).iloc[0].to_dict()


def test_a_stream_the_reader_breaks_writes_a_stopped_row_that_counts():
    words = " ".join(f"word{i}" for i in range(40))
    for _chunk in wb.stream(words, "fake/echo", cache=False):
        break
    row = _last_row()
    assert row["status"] == "stopped" and row["prompt_tokens"] > 0 and row["completion_tokens"] > 0
    assert row["cost_usd"] > 0
    assert wb.spend().loc["fake/echo", "stopped"] == 1


def test_a_stream_closed_after_some_chunks_counts_the_text_so_far_against_the_budget():
    words = " ".join(f"word{i}" for i in range(40))
    stream = wb.stream(words, "fake/echo", cache=False, tags={"project": "s"})
    chunks = iter(stream)
    read = [next(chunks) for _ in range(5)]
    chunks.close()  # what %%llm --stream does on Ctrl-C (Stream.close() does the same)
    row = _last_row()
    assert row["status"] == "stopped" and row["tags"] == {"project": "s"}
    assert row["completion_tokens"] == (len("".join(read)) + 3) // 4
    assert stores.ledger().spent_usd(("project", "s")) == pytest.approx(row["cost_usd"]) and row["cost_usd"] > 0


def test_ctrl_c_during_a_call_writes_a_stopped_row_with_the_estimate():
    wb.set_budget(usd=1.0)
    fake.enqueue([KeyboardInterrupt()])  # raised inside litellm.completion, as Ctrl-C would be
    with pytest.raises(KeyboardInterrupt):
        wb.complete(PROMPT, "fake/script", max_tokens=20)
    row = _last_row()
    assert row["status"] == "stopped"
    assert (row["prompt_tokens"], row["completion_tokens"]) == (19, 20)
    assert row["cost_usd"] == pytest.approx((19 * 1 + 20 * 2) / 1e6)
    assert stores.ledger().reserved_usd() == 0
    wb.set_budget(usd=None)  # under no budget, the row holds the prompt's estimate
    fake.enqueue([KeyboardInterrupt()])
    with pytest.raises(KeyboardInterrupt):
        wb.complete(PROMPT, "fake/script")
    row = _last_row()
    assert (row["status"], row["prompt_tokens"], row["cost_usd"]) == ("stopped", 19, pytest.approx(19 / 1e6))


def test_an_answer_the_cache_cannot_store_is_returned_billed_and_warned_once(monkeypatch):
    from workbench.errors import StoreError, WorkbenchWarning
    from workbench.gateway import cache as cache_module
    from workbench.gateway import caching, client

    monkeypatch.setattr(caching, "_cache_warned", set())  # one warning per kind and process: start afresh
    fake.enqueue(["a lone surrogate \ud800 in the answer", "again \udfff here"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = wb.complete("q1", "fake/script")
        second = wb.complete("q2", "fake/script")
    assert first.text.startswith("a lone surrogate") and second.text.startswith("again")
    mine = [w for w in caught if issubclass(w.category, WorkbenchWarning)]
    assert len(mine) == 1 and issubclass(mine[0].category, client.CacheWarning)
    assert "could not be cached" in str(mine[0].message)
    calls = wb.calls()
    assert list(calls["status"]) == ["ok", "ok"] and calls["cost_usd"].sum() > 0

    def disk_full(self, *args, **kwargs):
        raise StoreError("cache.sqlite: database or disk is full (while running INSERT)")

    monkeypatch.setattr(cache_module.AnswerCache, "set", disk_full)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(3):
            assert wb.complete(f"full disk {i}", "fake/echo").text == f"full disk {i}"
    assert len([w for w in caught if issubclass(w.category, client.CacheWarning)]) == 1
    assert len(wb.calls()) == 5
    json.dumps(wb.calls(1).iloc[0]["tags"])  # the rows read back
