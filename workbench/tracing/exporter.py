"""The background exporter: finished traces are spooled to the home, then go to MLflow in batches, off the
caller's thread.

A spool thread appends finished traces to this process's spool file within SPOOL_S (see spool.py: what a
kill -9 can lose), and resends what a killed process left there. The export thread waits for a short lull
(calls in a burst are not slowed by export work competing for the GIL), or until a batch is full or old,
then writes each trace with one `start_trace` and the whole batch's spans with one `log_spans`. A batch
MLflow refuses is retried trace by trace, so a trace it cannot write costs only itself. Only a store that
also fails a plain read (unreachable, broken) turns export off, with one TracingWarning; calls keep
answering, traces stay in memory for display and in the spool for the next start.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
import warnings
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

from workbench.config import settings
from workbench.errors import StoreError, WorkbenchWarning
from workbench.secrets import redact
from workbench.tracing import spool
from workbench.tracing.mlflow_io import to_mlflow
from workbench.tracing.records import TraceRecord
from workbench.tracking import pending
from workbench.tracking.backend import backend, default_experiment_name

__all__ = ["submit", "flush", "deliver_warnings", "undelivered", "reset", "TracingWarning", "off_reason",
           "QUIET_S", "MAX_AGE_S", "MAX_BATCH", "SPOOL_S", "exported_count"]

QUIET_S = 0.25  # export after this long without a new trace...
MAX_AGE_S = 10.0  # ...or when the oldest waiting trace is this old (a burst of calls is not slowed by export)...
MAX_BATCH = 1000  # ...or when this many wait
SPOOL_S = 0.2  # finished traces reach the spool file within this long (the most a kill -9 can lose)


class TracingWarning(WorkbenchWarning):
    """Tracing to MLflow is off or lost traces; calls are unaffected."""


_cond = threading.Condition()
_incoming: deque[tuple[float, TraceRecord]] = deque()  # finished, not yet spooled
_pending: deque[tuple[float, TraceRecord]] = deque()  # spooled, waiting for export
_thread: threading.Thread | None = None
_spooler: threading.Thread | None = None
_busy = False
_spooling = False
_flush_waiters = 0
_last_submit = 0.0
_off: dict[str, str] = {}  # tracking URI -> why export to it is off
_warned: set[str] = set()
undelivered: list[str] = []  # warnings waiting for a caller's thread to show them
_exported = 0
_spools: dict[Path, spool.Spool | None] = {}  # home -> this process's spool there (None: cannot spool there)
_spooled_in: dict[str, spool.Spool] = {}  # trace id -> the spool holding it, until acknowledged
_recovered: set[str] = set()  # trace ids resent from a dead process's spool: written only if MLflow lacks them
_recovered_homes: set[Path] = set()


def exported_count() -> int:
    """Traces written to a store by this process (benchmarks and tests)."""
    return _exported


def off_reason(uri: str) -> str | None:
    return _off.get(uri)


def _start_threads() -> None:
    """Under _cond: the spool and export threads, started on first use (again after a fork)."""
    global _thread, _spooler
    if _spooler is None or not _spooler.is_alive():
        _spooler = threading.Thread(target=_spool_loop, name="workbench-trace-spool", daemon=True)
        _spooler.start()
    if _thread is None or not _thread.is_alive():
        _thread = threading.Thread(target=_loop, name="workbench-trace-export", daemon=True)
        _thread.start()


def submit(trace: TraceRecord) -> None:
    global _last_submit
    now = time.monotonic()
    with _cond:
        _incoming.append((now, trace))
        _last_submit = now
        _start_threads()
        _cond.notify_all()


def flush(timeout_s: float = 30.0) -> bool:
    """Write every waiting trace now (and what a killed process left in the spool); True when all were handled
    (written, or kept in the spool because the store is off)."""
    global _flush_waiters
    deadline = time.monotonic() + timeout_s
    with _cond:
        if settings().tracing == "on" and settings().home not in _recovered_homes:
            _start_threads()  # the spool thread resends what a killed process left
        _flush_waiters += 1
        _cond.notify_all()
        try:
            done = _cond.wait_for(lambda: not _incoming and not _pending and not _busy and not _spooling
                                  and (settings().tracing != "on" or settings().home in _recovered_homes),
                                  timeout=max(0.0, deadline - time.monotonic()))
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


def _spool_for(home: Path) -> spool.Spool | None:
    if home not in _spools:
        try:
            _spools[home] = spool.Spool(home)
        except OSError as exc:  # a read-only home: export still works, a hard kill loses the batching window
            _spools[home] = None
            _warn_once(f"spool:{home}", f"traces are not spooled to {home / spool.FOLDER} "
                                        f"({exc.strerror or exc}): a hard kill may lose the last seconds of traces")
    return _spools[home]


def _recover(home: Path) -> list[tuple[float, TraceRecord]]:
    """Traces a killed process spooled in `home` and never acknowledged, taken into our own spool."""
    found: list[tuple[float, TraceRecord]] = []
    own = _spools.get(home)
    for path, bodies in spool.orphans(home, own.path if own else None):
        traces = []
        for body in bodies:
            try:
                traces.append(spool.from_dict(body))
            except (KeyError, TypeError, ValueError):  # a line of another version: not ours to guess at
                _warn_once(f"spool-line:{path}", f"a trace in {path} could not be read back and was not resent")
        _spool_write(home, traces)  # ours now, before the dead process's file goes
        _recovered.update(t.trace_id for t in traces)
        now = time.monotonic()
        found.extend((now, t) for t in traces)
    return found


def _spool_write(home: Path, traces: list[TraceRecord]) -> None:
    target = _spool_for(home)
    if target is None or not traces:
        return
    lines = []
    for trace in traces:
        try:
            lines.append((trace.trace_id, spool.to_line(trace)))
        except (TypeError, ValueError) as exc:  # cannot be serialized: it still goes to MLflow from memory
            _warn_once(f"spool-trace:{trace.trace_id}", f"trace {trace.trace_id} was not spooled: {exc}")
    try:
        target.write(lines)
    except OSError as exc:  # a full disk: export carries on, spooling stops for this home
        _spools[home] = None
        _warn_once(f"spool:{home}", f"spooling traces to {target.path} failed ({exc.strerror or exc}): "
                                    "a hard kill may lose the last seconds of traces")
        return
    for trace_id, _ in lines:
        _spooled_in[trace_id] = target


def _ack(trace_ids: list[str]) -> None:
    by_spool: dict[int, tuple[spool.Spool, list[str]]] = {}
    for trace_id in trace_ids:
        found = _spooled_in.pop(trace_id, None)
        if found is not None:
            by_spool.setdefault(id(found), (found, []))[1].append(trace_id)
    for target, ids in by_spool.values():
        with contextlib.suppress(OSError):  # in MLflow already: a later start sees them there, writes none twice
            target.ack(ids)


def _spool_loop() -> None:
    """Move finished traces to the spool file within SPOOL_S, then on to the export queue."""
    global _spooling
    while True:
        with _cond:
            home = settings().home
            recover = settings().tracing == "on" and home not in _recovered_homes
            while not _incoming and not recover:
                _cond.wait()
                home = settings().home
                recover = settings().tracing == "on" and home not in _recovered_homes
            if _incoming and not _flush_waiters and not recover:
                _cond.wait(SPOOL_S)  # gather a burst into one write
            batch = list(_incoming)
            _incoming.clear()
            _spooling = True
        recovered: list[tuple[float, TraceRecord]] = []
        try:
            if recover:
                recovered = _recover(home)
            _spool_write(home, [trace for _, trace in batch])
        except Exception as exc:  # never let the thread die: the traces still go on to export
            _warn_once("<spool>", f"spooling traces failed: {redact(str(exc))[:300]}")
        finally:
            with _cond:
                if recover:
                    _recovered_homes.add(home)
                _pending.extend(recovered)
                _pending.extend(batch)
                _spooling = False
                _cond.notify_all()


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
            continue  # kept in the spool: the next start sends them once the store is fixed
        try:
            opened = backend(uri)  # first: it imports MLflow through the gate
        except StoreError as exc:
            _turn_off(uri, str(exc))
            continue
        written, dropped = _write_all(uri, opened, traces)
        _ack(written + dropped)


def _turn_off(uri: str, reason: str) -> None:
    _off[uri] = " ".join(redact(reason).split())[:400]  # one line: it ends up in a cell's warning or error
    _warn_once(uri, f"tracing to MLflow is off for this session: {_off[uri]}. Calls still answer and "
                    f"%trace shows traces kept in memory; the traces wait in the spool under the home folder and "
                    f"are sent at the next start once the store (or WORKBENCH_TRACKING_URI) is fixed")


def _write_all(uri: str, opened: Any, traces: list[TraceRecord]) -> tuple[list[str], list[str]]:
    """(written ids, dropped ids). A batch MLflow refuses is retried trace by trace, so bad data costs only its own
    trace; a store that fails a plain read as well is unusable, and export to it turns off."""
    traces = _not_stored_yet(opened, traces)
    try:
        _write(opened, traces)
        written = traces
    except Exception as exc:
        if not _usable(opened):
            _turn_off(uri, f"{redact(uri)}: {type(exc).__name__}: {redact(str(exc))[:300]}")
            return [], []
        written, lost = [], []
        for trace in traces:
            try:
                _write(opened, [trace])
                written.append(trace)
            except Exception as alone:  # this trace's own data: it alone is lost, named in the warning
                lost.append(f"{trace.trace_id} ({type(alone).__name__}: {redact(str(alone))[:200]})")
        if lost:
            undelivered.append(f"{len(lost)} trace(s) could not be written to MLflow and are lost (the other "
                               f"{len(written)} were written): {'; '.join(lost[:3])}")
    _link(opened, written)
    return [t.trace_id for t in written], [t.trace_id for t in traces if t not in written]


def _usable(opened: Any) -> bool:
    """A cheap read: does the store answer at all (then a failed write was the data's fault)?"""
    try:
        opened.store.get_experiment(opened.experiment_id(default_experiment_name()))
        return True
    except Exception:  # any failure of a plain read means the store, not the trace, is broken
        return False


def _not_stored_yet(opened: Any, traces: list[TraceRecord]) -> list[TraceRecord]:
    """Drop traces resent from a dead process's spool that MLflow already holds (written before the kill)."""
    resent = [t.trace_id for t in traces if t.trace_id in _recovered]
    if not resent:
        return traces
    _recovered.difference_update(resent)
    stored: set[str] = set()
    for start in range(0, len(resent), 100):
        stored.update(t.info.trace_id for t in opened.client.batch_get_traces(resent[start:start + 100]))
    if stored:
        _ack(sorted(stored))
    return [t for t in traces if t.trace_id not in stored]


def _write(opened: Any, traces: list[TraceRecord]) -> None:
    global _exported
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


def _link(opened: Any, traces: list[TraceRecord]) -> None:
    """Traces to their run and prompt version, as MLflow's own entity links (the UI's run and prompt pages).
    A link MLflow refuses is said once per kind; the trace itself is stored and still names its run (metadata
    mlflow.sourceRun) and prompt (tag mlflow.linkedPrompts)."""
    from mlflow.exceptions import MlflowException

    by_run: dict[str, list[str]] = defaultdict(list)
    for trace in traces:
        if trace.run_id:
            by_run[trace.run_id].append(trace.trace_id)
    for run_id, trace_ids in by_run.items():
        try:
            opened.store.link_traces_to_run(trace_ids, run_id)
        except (MlflowException, NotImplementedError, OSError) as exc:
            _warn_once("link-run", f"{len(trace_ids)} trace(s) were not linked to run {run_id} in MLflow (the run's "
                                   f"page will not list them; their mlflow.sourceRun names it): "
                                   f"{redact(str(exc))[:200]}")
    links = [(t.trace_id, t.lineage["prompt_name"], t.lineage["prompt_version"]) for t in traces
             if t.lineage.get("prompt_name") and t.lineage.get("prompt_version") is not None]
    if not links:
        return
    from mlflow.entities.model_registry import PromptVersion

    for trace_id, name, version in links:
        try:
            opened.store.link_prompts_to_trace(trace_id, [PromptVersion(str(name), int(version), template="")])
        except (MlflowException, NotImplementedError, OSError, ValueError) as exc:
            _warn_once("link-prompt", f"trace {trace_id} was not linked to prompt {name!r} version {version} in "
                                      f"MLflow (its tag mlflow.linkedPrompts still names it): {redact(str(exc))[:200]}")


def reset() -> None:
    """Drop waiting traces and forget which stores are off (tests)."""
    with _cond:
        _incoming.clear()
        _pending.clear()
    _off.clear()
    _warned.clear()
    undelivered.clear()


def _close_spools() -> None:
    """At exit, after the last flush: a spool whose traces are all handled is removed; else the next start resends."""
    with _cond:
        found = [s for s in _spools.values() if s is not None]
        _spools.clear()
    for target in found:
        with contextlib.suppress(OSError):  # left as it is: the next start checks MLflow before resending
            target.close()


atexit.register(_close_spools)  # atexit runs in reverse: this runs after the flush below
atexit.register(flush, 10.0)
pending.register_flush("traces", flush)  # a run that ends, or a listing of runs, sees its traces
