"""Reliability under load: injected failures, threads, processes; and keys that never leak."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading

import pytest

import workbench as wb
from workbench.gateway import stores
from workbench.providers import fake


@pytest.mark.slow  # a thousand calls: left out of make test-fast
def test_thousand_flaky_calls_all_answered_and_every_failure_recorded():
    wb.configure(max_retries=2, retry_backoff_s=0)
    model = "fake/flaky?p=0.5&seed=7"
    responses = [wb.complete(f"question {i}", model, fallbacks=["fake/echo"], cache=False) for i in range(1000)]
    assert all(r.text == f"question {i}" for i, r in enumerate(responses))
    assert stores.ledger().count() == 1000
    recorded = sum(1 for r in responses for a in r.attempts if a.model == model)
    assert recorded == fake.injected_failures(model) > 300
    # a call falls back only after all its tries at the flaky model failed
    fell_back = [r for r in responses if r.model_used == "fake/echo"]
    assert fell_back and all(len(r.attempts) == 3 for r in fell_back)


def test_same_prompt_from_eight_threads():
    barrier = threading.Barrier(8)
    answers: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            answers.append(wb.complete("the same prompt", "fake/slow?ms=20").text)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and answers == ["the same prompt"] * 8
    assert stores.ledger().count() == 8
    assert stores.cache().count() == 1


_WRITER = """
import workbench as wb
for i in range(200):
    wb.complete(f"{tag} call {i}", "fake/echo", tags={"writer": "{tag}"})
    if i % 3 == 0:
        wb.complete("shared prompt", "fake/echo", tags={"writer": "{tag}"})
"""


@pytest.mark.slow  # starts processes or a server: left out of make test-fast
def test_two_processes_share_ledger_and_cache(workbench_home):
    env = {**os.environ, "WORKBENCH_HOME": str(workbench_home)}
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER.replace("{tag}", tag)], env=env, stderr=subprocess.PIPE,
                         text=True)
        for tag in ("a", "b")
    ]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    assert not any("locked" in e for e in errors)
    by_writer = wb.spend(by="writer")
    assert by_writer.loc["a", "calls"] == 200 + 67 and by_writer.loc["b", "calls"] == 200 + 67
    assert stores.cache().count() == 401  # 2 x 200 distinct prompts + the shared one


def test_api_key_never_leaks(monkeypatch, workbench_home):
    secret = "sk-live-THIS-IS-A-FAKE-KEY-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-ABCDEFGH-987654")
    found: list[str] = []
    r1 = wb.complete("hi", "openai/gpt-4o-mini", mock_response="ok", tags={"project": "p"})
    r2 = wb.complete("hi", "openai/gpt-4o-mini", mock_response="ok", api_key=secret)
    found += [repr(r1), repr(r2), repr(r1.to_dict()), repr(r2.to_dict())]
    # a provider error that quotes the key (as OpenAI's 401 does)
    import litellm

    fake.enqueue([litellm.AuthenticationError(f"Incorrect API key provided: {secret}", "fake", "fake/script"),
                  litellm.AuthenticationError("Incorrect API key provided: tok-ABCDEFGH-987654", "fake",
                                              "fake/script")])
    for _ in range(2):
        try:
            wb.complete("hi", "fake/script", cache=False)
        except wb.WorkbenchError as exc:
            found += [str(exc), repr(exc.attempts)]
    r3 = wb.complete("hi", "fake/fail?status=401", fallbacks=["fake/echo"])
    found.append(repr(r3))
    stores.reset()
    for path in workbench_home.rglob("*"):
        if path.is_file():
            found.append(path.read_bytes().decode("utf-8", "replace"))
    with sqlite3.connect(workbench_home / "ledger.sqlite") as conn:
        found.append(repr(conn.execute("SELECT * FROM calls").fetchall()))
    text = "\n".join(found)
    assert "Incorrect API key provided" in text  # the errors were seen...
    assert secret not in text and "tok-ABCDEFGH-987654" not in text  # ...with the keys masked
