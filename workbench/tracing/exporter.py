"""The background exporter: finished traces go to MLflow in batches, off the caller's thread.

It waits for a short lull (calls in a burst are not slowed by export work competing for the GIL), or
until a batch is full or old, then writes each trace with one `start_trace` and the whole batch's spans
with one `log_spans`. If the store is unreachable or broken, export turns off for that store and one
TracingWarning says why; calls keep answering and traces stay in memory for display.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
import warnings
from collections import defaultdict, deque

from workbench.errors import StoreError, WorkbenchWarning
from workbench.secrets import redact
from workbench.tracing.mlflow_io import to_mlflow
from workbench.tracing.records import TraceRecord
from workbench.tracking import pending
from workbench.tracking.backend import backend, default_experiment_name

__all__ = ["submit", "flush", "deliver_warnings", "undelivered", "reset", "TracingWarning", "off_reason",
           "QUIET_S", "MAX_AGE_S", "MAX_BATCH", "exported_count"]

QUIET_S = 0.25  # export after this long without a new trace...
MAX_AGE_S = 10.0  # ...or when the oldest waiting trace is this old (a burst of calls is not slowed by export)...
MAX_BATCH = 1000  # ...or when this many wait


class TracingWarning(WorkbenchWarning):
    """Tracing to MLflow is off or lost traces; calls are unaffected."""


_cond = threading.Condition()
_pending: deque[tuple[float, TraceRecord]] = deque()
_thread: threading.Thread | None = None
_busy = False
_flush_waiters = 0
_last_submit = 0.0
_off: dict[str, str] = {}  # tracking URI -> why export to it is off
_warned: set[str] = set()
undelivered: list[str] = []  # warnings waiting for a caller's thread to show them
_exported = 0


def exported_count() -> int:
    """Traces written to a store by this process (benchmarks and tests)."""
    return _exported


def off_reason(uri: str) -> str | None:
    return _off.get(uri)


def submit(trace: TraceRecord) -> None:
    global _thread, _last_submit
    now = time.monotonic()
    with _cond:
        _pending.append((now, trace))
        _last_submit = now
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_loop, name="workbench-trace-export", daemon=True)
            _thread.start()
        _cond.notify()


def flush(timeout_s: float = 30.0) -> bool:
    """Write every waiting trace now; True when all were handled (written, or dropped because the store is off)."""
    global _flush_waiters
    deadline = time.monotonic() + timeout_s
    with _cond:
        _flush_waiters += 1
        _cond.notify_all()
        try:
            done = _cond.wait_for(lambda: not _pending and not _busy, timeout=max(0.0, deadline - time.monotonic()))
        finally:
            _flush_waiters -= 1
    deliver_warnings()
    return done


def deliver_warnings() -> None:
    """Show warnings found in the export thread, in the caller's thread (so a notebook cell shows them)."""
    while undelivered:
        try:
            message = undelivered.pop(0)
        except IndexError:
            return
        warnings.warn(message, TracingWarning, stacklevel=3)


def _warn_once(uri: str, message: str) -> None:
    if uri not in _warned:
        _warned.add(uri)
        undelivered.append(message)


def _loop() -> None:
    global _busy
    while True:
        with _cond:
            while not _pending:
                _cond.wait()
            while _pending and not _flush_waiters and len(_pending) < MAX_BATCH:
                now = time.monotonic()
                wait = min(_last_submit + QUIET_S - now, _pending[0][0] + MAX_AGE_S - now)
                if wait <= 0:
                    break
                _cond.wait(wait)
            batch = [_pending.popleft()[1] for _ in range(min(len(_pending), MAX_BATCH))]
            _busy = True
        try:
            _export(batch)
        except Exception as exc:  # never let the thread die: report and carry on
            _warn_once("<export>", f"trace export failed: {redact(str(exc))[:300]}")
        finally:
            with _cond:
                _busy = False
                _cond.notify_all()


def _export(batch: list[TraceRecord]) -> None:
    by_uri: dict[str, list[TraceRecord]] = defaultdict(list)
    for trace in batch:
        by_uri[trace.tracking_uri].append(trace)
    for uri, traces in by_uri.items():
        if uri in _off:
            continue
        try:
            _write(uri, traces)
        except Exception as exc:
            reason = str(exc) if isinstance(exc, StoreError) else f"{type(exc).__name__}: {exc}"
            _off[uri] = redact(reason)[:400]
            _warn_once(uri, f"tracing to MLflow is off for this session: {_off[uri]}. Calls still answer and "
                            f"%trace shows traces kept in memory; fix the store (or WORKBENCH_TRACKING_URI) and "
                            f"restart the kernel to store traces again")


def _write(uri: str, traces: list[TraceRecord]) -> None:
    global _exported
    opened = backend(uri)  # first: it imports MLflow through the gate
    from mlflow.tracing.constant import TraceMetadataKey

    default = None
    spans_by_experiment: dict[str, list] = defaultdict(list)
    infos = []
    for trace in traces:
        if not trace.spans:
            continue
        experiment = trace.experiment_id or default or opened.experiment_id(default_experiment_name())
        if not trace.experiment_id:
            default = experiment
        info, spans = to_mlflow(trace, experiment)
        infos.append((info, spans))
        spans_by_experiment[experiment].extend(spans)
    # A trace in a run needs start_trace for its metadata (mlflow.sourceRun); every other trace is created by
    # log_spans alone, from its root span: one transaction per batch instead of one per trace (sqlite commits
    # cost ~10 ms each here).
    for info, _ in infos:
        if TraceMetadataKey.SOURCE_RUN in info.trace_metadata:
            opened.client.start_trace(info)
    try:
        for experiment, spans in spans_by_experiment.items():
            opened.client.log_spans(experiment, spans)
    except NotImplementedError:  # an old server without span logging: whole traces, spans as artifacts
        from mlflow.entities import TraceData

        for info, spans in infos:
            returned = opened.client.start_trace(info)
            opened.client._upload_trace_data(returned, TraceData(spans=spans))
    _exported += len(infos)
    _link(opened, traces)


def _link(opened, traces: list[TraceRecord]) -> None:
    """Traces to their run and prompt version, as MLflow's own entity links (the UI's run and prompt pages)."""
    by_run: dict[str, list[str]] = defaultdict(list)
    for trace in traces:
        if trace.run_id:
            by_run[trace.run_id].append(trace.trace_id)
    for run_id, trace_ids in by_run.items():
        with contextlib.suppress(Exception):  # the trace's mlflow.sourceRun metadata already names the run
            opened.store.link_traces_to_run(trace_ids, run_id)
    links = [(t.trace_id, t.lineage["prompt_name"], t.lineage["prompt_version"]) for t in traces
             if t.lineage.get("prompt_name") and t.lineage.get("prompt_version") is not None]
    if not links:
        return
    from mlflow.entities.model_registry import PromptVersion

    for trace_id, name, version in links:
        with contextlib.suppress(Exception):  # the trace tag mlflow.linkedPrompts already records the link
            opened.store.link_prompts_to_trace(trace_id, [PromptVersion(str(name), int(version), template="")])


def reset() -> None:
    """Drop waiting traces and forget which stores are off (tests)."""
    with _cond:
        _pending.clear()
    _off.clear()
    _warned.clear()
    undelivered.clear()


atexit.register(flush, 10.0)
pending.register_flush("traces", flush)  # a run that ends, or a listing of runs, sees its traces
