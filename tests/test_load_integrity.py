"""Load figures of issue 11 ("done when"): under threads and processes sharing one home, nothing stored is lost.

1. 16 threads x 200 calls in one process: every call has one ledger row and its trace in the home's MLflow store.
2. 2 processes x 8 threads sharing a home, with feedback and golden rows: every ledger row, every feedback (in the
   signals journal and as an MLflow assessment on its trace) and every golden row is stored; no "database is locked".

Each test counts what was stored and asserts the exact figures; `pytest -s` prints them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import workbench as wb
from workbench import config, tracing
from workbench.tracing import exporter

ROOT = Path(__file__).resolve().parents[1]


def _stored_trace_ids(ids: list[str]) -> set[str]:
    """The ids among `ids` that the current home's MLflow store holds, read through MLflow's own client."""
    from mlflow.tracing.client import TracingClient

    from workbench.tracking.backend import current_uri

    client = TracingClient(current_uri())  # MLflow's client on the store URI, not the exporter's cached one
    found: set[str] = set()
    for start in range(0, len(ids), 100):
        found.update(t.info.trace_id for t in client.batch_get_traces(ids[start:start + 100]))
    return found


def _ledger_trace_ids() -> list[str]:
    frame = wb.calls()
    return [t for t in frame["trace_id"].tolist() if t]


@pytest.fixture
def traced_home(workbench_home, tracing_on):
    """The test's own home, tracing exported to its MLflow store (home/mlflow.db)."""
    from workbench.tracking.backend import current_uri

    tracing.reset()
    assert current_uri() == f"sqlite:///{workbench_home / 'mlflow.db'}", current_uri()
    yield workbench_home
    tracing.flush(60)
    tracing.reset()


# -- 1: 16 threads x 200 calls in one process ----------------------------------------------------------------------

THREADS, CALLS = 16, 200


@pytest.mark.slow  # 3,200 calls and their traces
@pytest.mark.timeout(600)
def test_sixteen_threads_by_two_hundred_calls_lose_no_ledger_row_and_no_trace(traced_home):
    wb.complete("warm up", "fake/echo", cache=False)  # litellm's import and the store's creation: not measured
    assert tracing.flush(120)
    warm_ids = set(_ledger_trace_ids())
    assert len(warm_ids) == 1

    results: dict[tuple[int, int], tuple[str, str]] = {}  # (thread, call) -> (trace_id, answer text)
    errors: list[str] = []
    barrier = threading.Barrier(THREADS)

    def worker(n: int) -> None:
        try:
            barrier.wait(60)
            for i in range(CALLS):
                prompt = f"load thread {n} call {i}"
                tags = {"thread": str(n), "parity": "even" if i % 2 == 0 else "odd"} if i % 3 == 0 else None
                answer = wb.complete(prompt, "fake/echo", cache=False, tags=tags)
                results[(n, i)] = (answer.trace_id, answer.text)
        except Exception as exc:  # reported below: a thread's failure must fail the test
            errors.append(f"thread {n}: {type(exc).__name__}: {exc}")

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n,), name=f"load-{n}") for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(400)
    calls_s = time.perf_counter() - start
    assert errors == [], errors[:5]
    assert not any(t.is_alive() for t in threads), "a load thread never finished"
    flush_start = time.perf_counter()
    flushed = tracing.flush(240)
    flush_s = time.perf_counter() - flush_start
    assert flushed, "the export queue did not drain in 240 s"
    assert exporter.off_reason(config.settings().effective_tracking_uri) is None

    expected = THREADS * CALLS
    answered = [results[(n, i)] for n in range(THREADS) for i in range(CALLS) if (n, i) in results]
    wrong = [(n, i) for (n, i), (_, text) in results.items() if text != f"load thread {n} call {i}"]
    ids = [trace_id for trace_id, _ in answered]

    frame = wb.calls()
    rows = frame[~frame["trace_id"].isin(warm_ids)]
    ledger_ids = rows["trace_id"].tolist()
    tagged = int(rows["tags"].map(lambda t: "thread" in (json.loads(t) if isinstance(t, str) else t or {})).sum())
    stored = _stored_trace_ids(ids)
    print(f"\n[load 1] {THREADS} threads x {CALLS} calls: answered {len(answered)}/{expected}, "
          f"distinct trace ids {len(set(ids))}, ledger rows {len(rows)} (distinct {len(set(ledger_ids))}, "
          f"tagged {tagged}), stored in MLflow {len(stored)}, calls {calls_s:.1f} s "
          f"({expected / calls_s:.0f} calls/s), flush {flush_s:.1f} s")

    assert len(answered) == expected and wrong == []
    assert len(set(ids)) == expected  # every call its own trace
    assert len(rows) == expected, f"{expected - len(rows)} ledger rows lost"
    assert len(set(ledger_ids)) == expected, "duplicate ledger rows"
    assert set(ledger_ids) == set(ids)
    assert (rows["status"] == "ok").all() and (rows["model"] == "fake/echo").all()
    assert tagged == THREADS * len(range(0, CALLS, 3))  # tags kept on the calls that had them
    missing = sorted(set(ids) - stored)
    assert not missing, f"{len(missing)} traces not in MLflow, e.g. {missing[:3]}"


# -- 2: 2 processes x 8 threads, with feedback and golden rows ------------------------------------------------------

PROC_THREADS, PROC_CALLS = 8, 25
FEEDBACK_EVERY, GOLDEN_EVERY = 5, 2  # feedback on every 5th answer, a golden row from every 2nd

_CHILD = textwrap.dedent("""
    import json, sys, threading, time
    import workbench as wb
    from workbench.tracing import exporter
    from workbench.tracking.backend import current_uri

    name, start_at = sys.argv[1], float(sys.argv[2])
    threads, calls, feedback_every, golden_every = (int(x) for x in sys.argv[3:7])
    wb.golden("shared")  # the datasets store opened before the clock starts
    while time.time() < start_at:  # both processes start their threads together
        time.sleep(0.005)
    out = {"ids": [], "feedback": [], "golden": [], "errors": []}
    lock = threading.Lock()

    def worker(n):
        try:
            qa = wb.golden("shared")
            for i in range(calls):
                prompt = f"{name} thread {n} call {i}"
                answer = wb.complete(prompt, "fake/echo", cache=False,
                                     tags={"proc": name} if i % 4 == 0 else None)
                with lock:
                    out["ids"].append(answer.trace_id)
                if i % feedback_every == 0:
                    thumbs = (i // feedback_every) % 2 == 0
                    wb.feedback(answer, thumbs=thumbs)
                    with lock:
                        out["feedback"].append([answer.trace_id, thumbs])
                if i % golden_every == 0:
                    qa.add(prompt, answer.text, source=answer.trace_id)
                    with lock:
                        out["golden"].append(prompt)
        except Exception as exc:
            with lock:
                out["errors"].append(f"{name} thread {n}: {type(exc).__name__}: {exc}")

    began = time.perf_counter()
    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out["work_s"] = time.perf_counter() - began
    out["flushed"] = wb.tracing.flush(180)
    out["off"] = exporter.off_reason(current_uri())
    print(json.dumps(out))
""")


def _child_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKBENCH_", "MLFLOW_TRACKING"))}
    env.update(WORKBENCH_HOME=str(home), WORKBENCH_TRACING="on", WORKBENCH_ENDPOINTS="off",
               WORKBENCH_RETRY_BACKOFF="0", PYTHONPATH=str(ROOT), LITELLM_LOCAL_MODEL_COST_MAP="True",
               MLFLOW_DISABLE_TELEMETRY="true")
    return env


@pytest.mark.slow  # starts two processes
@pytest.mark.timeout(600)
def test_two_processes_by_eight_threads_with_feedback_and_golden_rows_lose_nothing(traced_home):
    from workbench.signals.journal import journal
    from workbench.tracking.backend import backend, current_uri

    backend(current_uri())  # the home's store created once here; fresh-home races are test_trace_faults' business
    start_at = time.time() + 10  # both children have imported workbench by then
    args = [str(start_at), str(PROC_THREADS), str(PROC_CALLS), str(FEEDBACK_EVERY), str(GOLDEN_EVERY)]
    began = time.perf_counter()
    children = {name: subprocess.Popen([sys.executable, "-c", _CHILD, name, *args], env=_child_env(traced_home),
                                       cwd=str(traced_home.parent), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True)
                for name in ("a", "b")}
    outputs = {name: child.communicate(timeout=400) for name, child in children.items()}
    wall_s = time.perf_counter() - began
    for name, child in children.items():
        assert child.returncode == 0, f"child {name} failed:\n{outputs[name][1][-3000:]}"
    locked = {name: err.lower().count("database is locked") for name, (_, err) in outputs.items()}
    results = {name: json.loads(out.strip().splitlines()[-1]) for name, (out, _) in outputs.items()}

    ids = [i for r in results.values() for i in r["ids"]]
    given = {(t, v) for r in results.values() for t, v in r["feedback"]}
    golden_inputs = [p for r in results.values() for p in r["golden"]]
    per_thread = range(PROC_CALLS)
    calls = 2 * PROC_THREADS * PROC_CALLS
    feedbacks = 2 * PROC_THREADS * len(per_thread[::FEEDBACK_EVERY])
    goldens = 2 * PROC_THREADS * len(per_thread[::GOLDEN_EVERY])

    config.reset_settings()
    ledger_ids = _ledger_trace_ids()
    stored = _stored_trace_ids(ids)
    journal_rows = journal().rows("thumbs")
    in_journal = {(r.trace_id, r.value) for r in journal_rows}
    client = backend(current_uri()).client
    in_mlflow = set()
    valid_thumbs = 0
    for trace_id in sorted({t for t, _ in given}):
        for a in client.get_trace(trace_id).info.assessments:
            if a.name == "thumbs":
                in_mlflow.add((trace_id, a.value))
                valid_thumbs += 1
    golden_rows = wb.golden("shared").rows
    work = ", ".join(f"{n} {r['work_s']:.1f} s" for n, r in results.items())
    print(f"\n[load 2] 2 processes x {PROC_THREADS} threads x {PROC_CALLS} calls: answered {len(ids)}/{calls}, "
          f"ledger rows {len(ledger_ids)} (distinct {len(set(ledger_ids))}), stored in MLflow {len(stored)}; "
          f"feedback given {len(given)}/{feedbacks}, in journal {len(journal_rows)} (distinct {len(in_journal)}), "
          f"as MLflow assessments {valid_thumbs}; golden rows {len(golden_rows)}/{goldens} "
          f"(distinct inputs {len({r.input for r in golden_rows})}); 'database is locked' in stderr {locked}; "
          f"child work {work}, wall {wall_s:.1f} s")

    assert {name: r["errors"] for name, r in results.items()} == {"a": [], "b": []}
    assert locked == {"a": 0, "b": 0}, {name: err[-2000:] for name, (_, err) in outputs.items()}
    assert [r["flushed"] for r in results.values()] == [True, True]
    assert [r["off"] for r in results.values()] == [None, None]
    assert len(ids) == calls and len(set(ids)) == calls
    assert len(ledger_ids) == calls and len(set(ledger_ids)) == calls, "ledger rows lost or duplicated"
    assert set(ledger_ids) == set(ids)
    assert stored == set(ids), f"{len(set(ids) - stored)} traces not in MLflow"
    assert len(given) == feedbacks
    assert len(journal_rows) == feedbacks and in_journal == given, "feedback lost from the signals journal"
    assert valid_thumbs == feedbacks and in_mlflow == given, "feedback lost from MLflow's assessments"
    assert len(golden_rows) == goldens and sorted(r.input for r in golden_rows) == sorted(golden_inputs)
    assert len(set(golden_inputs)) == goldens
    assert {r.source for r in golden_rows} <= set(ids)
