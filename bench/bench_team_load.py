"""Many kernels, one MLflow (issue 13, section 3): N processes x M `%%llm`-equivalent calls against a team server.

    python bench/bench_team_load.py                        # 16 processes x 200 calls, feedback on every 10th
    python bench/bench_team_load.py --procs 4 --calls 50   # smaller

Starts PostgreSQL (mlflow/postgres-local.sh, as the postgres user when root) and `mlflow server --workers 1`
(mlflow/start-server.sh) on loopback ports, then runs the load twice with the same processes and prompts:
tracing off (the baseline), then tracing on to the server (WORKBENCH_TRACKING_URI), with `workbench.feedback`
on a tenth of the calls. All processes share one home folder (cache, ledger, signals journal), like kernels of
one project. It prints:

- traces and assessments stored in MLflow (counted through its API) against the number expected, and any
  trace id missing;
- call latency p50/p99 with tracing on beside tracing off, and their ratio (target: p99 within 1.5x);
- the export lag: from the last call of any process to the moment every trace is in the server's store
  (target: <= 10 s);
- every "database is locked" found in the processes' output and the server's log (target: none).

The first call of each process (imports, opening the store) is made before all processes start together and
is left out of the latencies. Nothing is asserted here; tests/test_team_load.py runs a bounded version.

Measured here (2026-12-04, 2 shared cores, load 2-19 from other work during the run), 16 x 200, feedback on
every 10th: 3200 of 3200 traces and 304 of 304 assessments stored, 0 "database is locked"; p50 off 34.3 ms /
on 7.7 ms, p99 off 81.9 ms / on 95.2 ms (1.16x); export lag 3.1 s; feedback p50 4.2 s, p99 9.9 s. Read the
p50 with care: a feedback call flushes its kernel's waiting traces and waits on the one-worker server, so
in the traced run fewer processes compete for the CPUs at any moment (--feedback-every 0 compares calls
alone). The server writes a trace with ~5 SQL statements (~30-50 ms a trace on this machine under load,
MLflow's own code): its throughput, not the client, bounds the lag. With --feedback-every 0 (16 x 200): 3200
of 3200 stored, p50 off 30.9 / on 34.3 ms, p99 off 87.5 / on 118.6 ms (1.36x), lag 22.5 s; the exporter
sending every 2 s instead of every 10 s in a burst (MAX_AGE_S) changed nothing (lag 23.6 s, p99 1.38x).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "mlflow"
LOCKED = "database is locked"


# --------------------------------------------------------------------------- the stack: PostgreSQL + MLflow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Stack:
    url: str  # the MLflow server
    store: str  # its PostgreSQL URI (no password: trust auth on loopback)
    work: Path
    server_log: Path


def _stop_group(process: subprocess.Popen, wait_s: float = 30) -> None:
    """SIGTERM the process group we started, then SIGKILL it if it does not go."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(wait_s)
    # then whatever is left of the group (the leader's helpers, e.g. job consumers, can outlive it)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


@contextlib.contextmanager
def team_stack(start_wait_s: float = 240) -> Iterator[Stack]:
    """PostgreSQL + `mlflow server --workers 1` on loopback ports, through the scripts a team runs; all stopped
    (process groups) and deleted afterwards."""
    work = Path(tempfile.mkdtemp(prefix="wb-load-"))
    os.chmod(work, 0o755)  # noqa: S103 - the postgres user must reach its data folder inside
    data, artifacts, log_path = work / "pgdata", work / "artifacts", work / "mlflow.log"
    pg_port, port = free_port(), free_port()
    server = None
    try:
        started = subprocess.run([str(SCRIPTS / "postgres-local.sh"), "start", str(data), str(pg_port)],
                                 capture_output=True, text=True, timeout=180)
        if started.returncode != 0:
            raise RuntimeError(f"postgres-local.sh start failed: {started.stderr.strip()[-1000:]}")
        store = started.stdout.strip().splitlines()[-1]
        env = dict(os.environ, MLFLOW_BACKEND_STORE_URI=store, MLFLOW_ARTIFACTS_DESTINATION=str(artifacts),
                   MLFLOW_PORT=str(port), MLFLOW_HOST="127.0.0.1", MLFLOW_WORKERS="1",
                   PYTHON=os.environ.get("PYTHON", sys.executable))
        # no background job workers: seven huey consumer processes would compete for the same CPUs
        env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        with open(log_path, "wb") as log:
            server = subprocess.Popen([str(SCRIPTS / "start-server.sh")], env=env, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + start_wait_s
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:  # noqa: S310 - loopback
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("mlflow server did not start:\n" + log_path.read_text(errors="replace")[-3000:])
            time.sleep(0.5)
        yield Stack(url, store, work, log_path)
    finally:
        if server is not None:
            _stop_group(server)
        subprocess.run([str(SCRIPTS / "postgres-local.sh"), "stop", str(data)], capture_output=True, timeout=120)
        shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- one kernel (a child process)


def child(calls: int, feedback_every: int, model: str, out: Path) -> None:
    """One kernel's work: a warm-up call, READY, wait for GO on stdin, then the calls; results to `out`."""
    import workbench as wb
    from workbench import tracing
    from workbench.tracing import exporter

    tracing_on = os.environ.get("WORKBENCH_TRACING") == "on"
    tag = os.environ["WB_LOAD_TAG"]
    errors: list[str] = []
    ids: list[str] = []
    first = wb.complete(f"{tag} warm-up", model)  # imports litellm (and MLflow when tracing): not timed
    ids.append(first.trace_id or "")
    if tracing_on:
        tracing.flush(300)
    print("READY", flush=True)
    sys.stdin.readline()  # GO: every process starts its calls at once
    latencies: list[float] = []
    feedback_ms: list[float] = []
    assessments = 0
    for i in range(1, calls):
        start = time.perf_counter()
        try:
            answer = wb.complete(f"{tag} question {i}: what is {i} + {i}?", model)
        except Exception as exc:  # counted and reported, never hidden: a lost call is a failure of the run
            errors.append(f"call {i}: {type(exc).__name__}: {exc}")
            continue
        latencies.append((time.perf_counter() - start) * 1000)
        ids.append(answer.trace_id or "")
        if tracing_on and feedback_every and i % feedback_every == 0:
            start = time.perf_counter()
            try:
                wb.feedback(answer, thumbs=(i // feedback_every) % 2 == 0)
                assessments += 1
            except Exception as exc:
                errors.append(f"feedback {i}: {type(exc).__name__}: {exc}")
            feedback_ms.append((time.perf_counter() - start) * 1000)
    last_call = time.time()
    flushed = tracing.flush(600) if tracing_on else True
    result = {"latencies_ms": latencies, "feedback_ms": feedback_ms, "trace_ids": ids, "assessments": assessments,
              "last_call": last_call, "flushed": flushed, "flushed_at": time.time(), "errors": errors,
              "exported": exporter.exported_count(), "warnings": list(exporter.undelivered)}
    out.write_text(json.dumps(result))


# --------------------------------------------------------------------------- the parent


@dataclass
class RunResult:
    mode: str
    latencies_ms: list[float]
    feedback_ms: list[float]
    trace_ids: list[str]
    assessments: int
    last_call: float
    errors: list[str]
    locked: list[str]
    flushed: bool
    all_stored_at: float | None = None  # wall clock when the store held every trace (tracing on)
    outputs: list[str] = field(default_factory=list)

    @property
    def lag_s(self) -> float | None:
        return None if self.all_stored_at is None else max(0.0, self.all_stored_at - self.last_call)


def _experiment_id(url: str, name: str) -> str | None:
    request = f"{url}/api/2.0/mlflow/experiments/get-by-name?experiment_name={name}"
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
            return str(json.loads(answer.read())["experiment"]["experiment_id"])
    except OSError:
        return None


def _count_in_db(store: str, experiment_id: str) -> int:
    """Traces of the experiment that have their spans in the store: a cheap poll that does not load the server."""
    import psycopg2

    dsn = store.replace("postgresql+psycopg2://", "postgresql://")
    with contextlib.closing(psycopg2.connect(dsn)) as db, db.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT t.request_id) FROM trace_info t JOIN spans s "
                       "ON s.trace_id = t.request_id WHERE t.experiment_id = %s", (int(experiment_id),))
        return int(cursor.fetchone()[0])


def _watch(stack: Stack, experiment: str, expected: int, stop: threading.Event, seen: dict[str, float]) -> None:
    """Poll the store until it holds `expected` traces of the experiment; note when."""
    experiment_id = None
    while not stop.is_set():
        try:
            experiment_id = experiment_id or _experiment_id(stack.url, experiment)
            if experiment_id is not None and _count_in_db(stack.store, experiment_id) >= expected:
                seen["at"] = time.time()
                return
        except Exception as exc:  # noqa: BLE001 - a poll that fails is retried; the final count is what matters
            seen["poll_error"] = time.time()
            print(f"  (poll failed: {type(exc).__name__}: {exc})", file=sys.stderr)
        stop.wait(0.2)


def run_load(stack: Stack, *, procs: int, calls: int, tracing: bool, feedback_every: int = 10,
             model: str = "fake/echo", home: Path | None = None, experiment: str = "load",
             ready_wait_s: float = 600, run_wait_s: float = 1800) -> RunResult:
    """`procs` processes x `calls` calls, all started together; returns what they measured and wrote."""
    work = Path(tempfile.mkdtemp(prefix="run-", dir=stack.work))
    home = home or work / "home"
    env = dict(os.environ, WORKBENCH_HOME=str(home), WORKBENCH_TRACKING_URI=stack.url,
               WORKBENCH_TRACING="on" if tracing else "off", WORKBENCH_ENDPOINTS="off",
               MLFLOW_EXPERIMENT_NAME=experiment, PYTHONPATH=os.pathsep.join(
                   [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    env.pop("MLFLOW_TRACKING_URI", None)
    children: list[tuple[subprocess.Popen, Path, Path]] = []
    try:
        for number in range(procs):
            out, err = work / f"child{number}.json", work / f"child{number}.err"
            child_env = dict(env, WB_LOAD_TAG=f"{experiment}-p{number}")
            with open(err, "wb") as stderr:
                process = subprocess.Popen(
                    [sys.executable, __file__, "--child", "--calls", str(calls), "--feedback-every",
                     str(feedback_every), "--model", model, "--out", str(out)],
                    env=child_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                    start_new_session=True, text=True)
            children.append((process, out, err))
        deadline = time.monotonic() + ready_wait_s
        for process, _, err in children:
            line = _readline(process, deadline)
            if line.strip() != "READY":
                raise RuntimeError(f"a load process did not get ready ({line!r}):\n"
                                   + err.read_text(errors="replace")[-2000:])
        stop, seen = threading.Event(), {}
        watcher = None
        if tracing:
            watcher = threading.Thread(target=_watch, args=(stack, experiment, procs * calls, stop, seen), daemon=True)
            watcher.start()
        for process, _, _ in children:
            process.stdin.write("GO\n")
            process.stdin.flush()
        deadline = time.monotonic() + run_wait_s
        for process, _, err in children:
            code = process.wait(max(1.0, deadline - time.monotonic()))
            if code != 0:
                raise RuntimeError(f"a load process exited with {code}:\n" + err.read_text(errors="replace")[-2000:])
        if watcher is not None:
            watcher.join(60)  # the processes flushed before exiting: the store should hold everything now
            stop.set()
    finally:
        for process, _, _ in children:
            _stop_group(process, 5)
    results = [json.loads(out.read_text()) for _, out, _ in children]
    outputs = [err.read_text(errors="replace") for _, _, err in children]
    locked = [line for text in outputs for line in text.splitlines() if LOCKED in line.lower()]
    locked += [w for r in results for w in r["warnings"] if LOCKED in w.lower()]
    return RunResult(
        mode="on" if tracing else "off",
        latencies_ms=[x for r in results for x in r["latencies_ms"]],
        feedback_ms=[x for r in results for x in r["feedback_ms"]],
        trace_ids=[t for r in results for t in r["trace_ids"] if t],
        assessments=sum(r["assessments"] for r in results),
        last_call=max(r["last_call"] for r in results),
        errors=[e for r in results for e in r["errors"]],
        locked=locked, flushed=all(r["flushed"] for r in results),
        all_stored_at=seen.get("at") if tracing else None, outputs=outputs)


def _readline(process: subprocess.Popen, deadline: float) -> str:
    """One line from a child's stdout, or '' if it exits or the deadline passes first."""
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(max(0.0, deadline - time.monotonic()))
    return got[0] if got else ""


@dataclass
class Stored:
    traces: int  # expected trace ids found, with their spans
    missing: list[str]
    assessments: int  # assessments on those traces
    extra: int  # traces in the experiment that no process reported


def count_stored(stack: Stack, experiment: str, trace_ids: list[str]) -> Stored:
    """Count, through MLflow's API, the experiment's traces (with spans) and their assessments."""
    from mlflow.tracing.client import TracingClient

    client = TracingClient(stack.url)
    experiment_id = _experiment_id(stack.url, experiment)
    if experiment_id is None:
        return Stored(0, list(trace_ids), 0, 0)
    infos, token = {}, None
    while True:
        page = client.search_traces(locations=[experiment_id], max_results=500, page_token=token,
                                    include_spans=False)
        infos.update({trace.info.trace_id: trace.info for trace in page})
        token = page.token
        if not token:
            break
    wanted = set(trace_ids)
    # spans: read every expected trace back whole (batch_get_traces fetches spans), in pages
    with_spans: set[str] = set()
    present = [t for t in trace_ids if t in infos]
    for start in range(0, len(present), 100):
        for trace in client.batch_get_traces(present[start:start + 100]):
            if trace.data.spans:
                with_spans.add(trace.info.trace_id)
    assessments = sum(len(infos[t].assessments or []) for t in present)
    return Stored(traces=len(with_spans), missing=sorted(wanted - with_spans), assessments=assessments,
                  extra=len(set(infos) - wanted))


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def server_locked(stack: Stack) -> list[str]:
    text = stack.server_log.read_text(errors="replace") if stack.server_log.exists() else ""
    return [line for line in text.splitlines() if LOCKED in line.lower()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--procs", type=int, default=16)
    parser.add_argument("--calls", type=int, default=200, help="calls per process (the first is the warm-up)")
    parser.add_argument("--feedback-every", type=int, default=10, help="feedback on every Nth call (0: none)")
    parser.add_argument("--model", default="fake/echo")
    parser.add_argument("--rounds", type=int, default=1, help="off/on pairs (drift on a shared machine shows)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.calls, args.feedback_every, args.model, args.out)
        return

    started = time.perf_counter()
    with team_stack() as stack:
        print(f"PostgreSQL + mlflow server --workers 1 up in {time.perf_counter() - started:.1f} s; "
              f"{args.procs} processes x {args.calls} calls of {args.model}, feedback on every "
              f"{args.feedback_every}th, one shared home per run; {os.cpu_count()} CPUs, load "
              f"{os.getloadavg()[0]:.1f}")
        for number in range(1, args.rounds + 1):
            off = run_load(stack, procs=args.procs, calls=args.calls, tracing=False, model=args.model,
                           experiment=f"load-off-{number}")
            experiment = f"load-on-{number}"
            on = run_load(stack, procs=args.procs, calls=args.calls, tracing=True, model=args.model,
                          feedback_every=args.feedback_every, experiment=experiment)
            stored = count_stored(stack, experiment, on.trace_ids)
            expected = args.procs * args.calls
            expected_assessments = args.procs * sum(1 for i in range(1, args.calls)
                                                    if args.feedback_every and i % args.feedback_every == 0)
            p50_off, p99_off = percentile(off.latencies_ms, 50), percentile(off.latencies_ms, 99)
            p50_on, p99_on = percentile(on.latencies_ms, 50), percentile(on.latencies_ms, 99)
            print(f"round {number}: traces stored {stored.traces} of {expected} (lost {expected - stored.traces}"
                  f"{', e.g. ' + ', '.join(stored.missing[:3]) if stored.missing else ''}; {stored.extra} unexpected), "
                  f"assessments {stored.assessments} of {expected_assessments} "
                  f"({on.assessments} feedback calls answered)")
            print(f"round {number}: call latency p50 off {p50_off:.1f} ms / on {p50_on:.1f} ms "
                  f"({p50_on / p50_off:.2f}x); p99 off {p99_off:.1f} ms / on {p99_on:.1f} ms "
                  f"({p99_on / p99_off:.2f}x, target <= 1.5x); mean off {statistics.fmean(off.latencies_ms):.1f} / "
                  f"on {statistics.fmean(on.latencies_ms):.1f} ms")
            if on.feedback_ms:
                print(f"round {number}: feedback p50 {percentile(on.feedback_ms, 50):.0f} ms, "
                      f"p99 {percentile(on.feedback_ms, 99):.0f} ms (it flushes the kernel's waiting traces first)")
            lag = on.lag_s
            print(f"round {number}: export lag (last call -> every trace in the store) "
                  f"{'not reached' if lag is None else f'{lag:.1f} s'} (target <= 10 s); all processes flushed: "
                  f"{on.flushed}")
            locked = off.locked + on.locked + server_locked(stack)
            print(f"round {number}: '{LOCKED}': {len(locked)} lines" + (f", e.g. {locked[0][:200]}" if locked else ""))
            for errors in (off.errors, on.errors):
                if errors:
                    print(f"round {number}: {len(errors)} errors, e.g. {errors[0][:300]}")


if __name__ == "__main__":
    main()
