"""Spans and traces as plain records: cheap to make on the hot path, converted to MLflow's types off it.

Times are epoch nanoseconds (what MLflow stores), ids are hex strings in MLflow's format (a trace id is
`tr-` + 32 hex digits, a span id 16 hex digits), so a record and its stored copy share ids.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SpanRecord", "TraceRecord", "KINDS", "new_trace_id", "new_span_id", "now_ns"]

# Our span kinds; each maps to MLflow's SpanType of the same name in upper case.
KINDS = (
    "llm", "chat_model", "chain", "agent", "tool", "retriever", "parser", "embedding", "reranker",
    "memory", "workflow", "task", "guardrail", "evaluator", "unknown",
)


# Ids only need to be unique, not secret: a seeded generator is ~20x cheaper than os.urandom per id.
_ids = random.Random(os.urandom(16))  # noqa: S311 - unique, not secret (see above)
os.register_at_fork(after_in_child=lambda: _ids.seed(os.urandom(16)))  # a forked worker must not repeat ids


def new_trace_id() -> str:
    return f"tr-{_ids.getrandbits(128):032x}"


def new_span_id() -> str:
    return f"{_ids.getrandbits(64) or 1:016x}"


def now_ns() -> int:
    return time.time_ns()


@dataclass(slots=True)
class SpanRecord:
    """One step of a trace. inputs/outputs hold the caller's objects as given (serialized at export)."""

    span_id: str
    parent_id: str | None
    name: str
    kind: str
    start_ns: int
    end_ns: int | None = None  # None while the span is open
    status: str = "IN_PROGRESS"  # IN_PROGRESS | OK | ERROR
    error_type: str | None = None
    error_message: str | None = None
    inputs: Any = None
    outputs: Any = None
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_ms(self) -> float | None:
        return None if self.end_ns is None else (self.end_ns - self.start_ns) / 1e6

    def end(self, error: BaseException | None = None, end_ns: int | None = None) -> None:
        self.end_ns = end_ns or now_ns()
        if error is not None:
            self.fail(type(error).__name__, str(error))
        elif self.status == "IN_PROGRESS":
            self.status = "OK"

    def fail(self, error_type: str, message: str) -> None:
        self.status = "ERROR"
        self.error_type = error_type
        self.error_message = message


@dataclass(slots=True)
class TraceRecord:
    """A tree of spans. Finished when its root span ends; then it is handed to the exporter once."""

    trace_id: str
    tracking_uri: str  # where it goes, fixed when it starts (settings may change later)
    spans: list[SpanRecord] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)  # the calls' tags (project=support...)
    lineage: dict[str, Any] = field(default_factory=dict)  # notebook, cell, template, variables, prompt
    run_id: str | None = None
    experiment_id: str | None = None  # None: the default experiment, resolved at export
    finished: bool = False
    user: str | None = None  # who made it (workbench.identity), fixed when it starts

    @property
    def root(self) -> SpanRecord | None:
        ids = {s.span_id for s in self.spans}
        for span in self.spans:
            if span.parent_id is None or span.parent_id not in ids:
                return span
        return None

    @property
    def name(self) -> str:
        root = self.root
        return root.name if root else "trace"

    @property
    def status(self) -> str:
        root = self.root
        return root.status if root else "IN_PROGRESS"

    @property
    def start_ns(self) -> int:
        return min((s.start_ns for s in self.spans), default=0)

    @property
    def end_ns(self) -> int | None:
        ends = [s.end_ns for s in self.spans]
        return None if not ends or None in ends else max(e for e in ends if e is not None)
