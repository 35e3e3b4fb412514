"""Finished traces spooled to the home before they are batched to MLflow, so a hard kill loses almost nothing.

Format: one append-only JSON-lines file per process, `<home>/spool/traces-<pid>-<random>.jsonl`, each line
either `{"v": 1, "trace": {...}}` (a whole finished trace, secrets already scrubbed, ASCII-escaped so a lone
surrogate round-trips) or `{"ack": [trace ids]}` (handled: written to MLflow, or dropped as bad data). The
writing process holds an exclusive file lock on `<file>.lock` for its lifetime; a file whose lock can be taken
belongs to a process that is gone, and its unacknowledged traces are resent by the next process that exports
(`orphans()`), which checks MLflow first so nothing is written twice. A clean exit with everything acknowledged
removes the file. Lines are written with one `os.write` each batch (they survive kill -9 as soon as written) and
fsync'd at most once per FSYNC_S (what an OS crash can lose on top). See docs/decisions.md, "The trace spool".
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from workbench.tracing.payload import scrub
from workbench.tracing.records import SpanRecord, TraceRecord

__all__ = ["Spool", "orphans", "to_line", "from_dict", "FSYNC_S", "COMPACT_BYTES", "FOLDER"]

FOLDER = "spool"
FSYNC_S = 1.0  # fsync at most this often: an OS crash may lose this much on top of what was never spooled
COMPACT_BYTES = 8 << 20  # a file this big with nothing outstanding starts again from empty
_SPAN_FIELDS = ("span_id", "parent_id", "name", "kind", "start_ns", "end_ns", "status", "error_type",
                "error_message", "inputs", "outputs", "attributes")


def to_line(trace: TraceRecord) -> bytes:
    """One spool line: the trace as plain, scrubbed JSON (ASCII, so any str survives the round trip)."""
    spans = [[getattr(span, name) for name in _SPAN_FIELDS] for span in trace.spans]
    body = scrub({"spans": spans, "tags": trace.tags, "lineage": trace.lineage})
    body.update(id=trace.trace_id, uri=trace.tracking_uri, run=trace.run_id, exp=trace.experiment_id)
    return (json.dumps({"v": 1, "trace": body}, separators=(",", ":")) + "\n").encode("ascii")


def from_dict(body: dict[str, Any]) -> TraceRecord:
    spans = [SpanRecord(**dict(zip(_SPAN_FIELDS, fields, strict=True))) for fields in body["spans"]]
    return TraceRecord(body["id"], body["uri"], spans, dict(body.get("tags") or {}), dict(body.get("lineage") or {}),
                       body.get("run"), body.get("exp"), finished=True)


class Spool:
    """This process's spool file in one home. Not thread-safe: the exporter's threads call it under their lock."""

    def __init__(self, home: Path) -> None:
        folder = home / FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"traces-{os.getpid()}-{secrets.token_hex(4)}.jsonl"
        self.lock = FileLock(str(self.path) + ".lock")
        self.lock.acquire(timeout=0)  # ours for life: a free lock is how the next process knows we are gone
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.pid = os.getpid()
        self.outstanding: set[str] = set()
        self.size = 0
        self._synced = time.monotonic()

    def write(self, lines: list[tuple[str, bytes]]) -> None:
        """Append (trace id, line) pairs in one write; fsync when the last one is older than FSYNC_S."""
        if not lines:
            return
        data = b"".join(line for _, line in lines)
        self._append(data)
        self.outstanding.update(trace_id for trace_id, _ in lines)

    def ack(self, trace_ids: list[str]) -> None:
        """These traces are handled; when none is left outstanding and the file is big, start it again."""
        if not trace_ids:
            return
        self.outstanding.difference_update(trace_ids)
        if not self.outstanding and self.size > COMPACT_BYTES:
            os.ftruncate(self.fd, 0)
            self.size = 0
            return
        self._append((json.dumps({"ack": trace_ids}, separators=(",", ":")) + "\n").encode("ascii"))

    def _append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]
        self.size += len(data)
        now = time.monotonic()
        if now - self._synced >= FSYNC_S:
            os.fsync(self.fd)
            self._synced = now

    def close(self) -> None:
        """At exit: fsync; remove the file when everything in it is handled, else leave it for the next start."""
        if self.pid != os.getpid():  # a forked child must not close its parent's spool
            return
        os.fsync(self.fd)
        os.close(self.fd)
        if not self.outstanding:
            self.path.unlink(missing_ok=True)
        self.lock.release()
        if not self.outstanding:
            Path(self.lock.lock_file).unlink(missing_ok=True)


def _read(path: Path) -> list[dict[str, Any]]:
    """The unacknowledged traces of one spool file; a torn last line (killed mid-write) is skipped."""
    traces: dict[str, dict[str, Any]] = {}
    acked: set[str] = set()
    with open(path, "rb") as handle:
        for raw in handle:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if "ack" in line:
                acked.update(line["ack"])
            elif line.get("v") == 1 and isinstance(line.get("trace"), dict):
                traces[line["trace"]["id"]] = line["trace"]
    return [body for trace_id, body in traces.items() if trace_id not in acked]


def orphans(home: Path, mine: Path | None) -> Iterator[tuple[Path, list[dict[str, Any]]]]:
    """(file, unacknowledged traces) of each spool file whose process is gone. The caller takes the traces into
    its own spool and then calls `release(file)`; the file's lock is held meanwhile, so two processes starting
    at once never both take the same file."""
    folder = home / FOLDER
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("traces-*.jsonl")):
        if mine is not None and path == mine:
            continue
        lock = FileLock(str(path) + ".lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:  # its process is alive
            continue
        try:
            if not path.exists():  # taken and removed by another process between our glob and our lock
                continue
            yield path, _read(path)
            path.unlink(missing_ok=True)
        finally:
            lock.release()
            Path(lock.lock_file).unlink(missing_ok=True)
