"""A trace -> the versioned `application/vnd.workbench.trace+json` payload (see docs/trace-schema.md).

Spans are listed flat, depth-first in start order, each with its parent id and depth, so a renderer can
nest them or draw a waterfall without sorting. The payload is capped: strings are truncated (with their
full length kept), then payloads dropped, then trailing spans omitted, until it fits `max_bytes`.
"""

from __future__ import annotations

import json
from typing import Any

from workbench.tracing.payload import dumps, scrub, scrub_many, scrub_sized, truncate
from workbench.tracing.records import SpanRecord, TraceRecord

__all__ = ["MIME_TYPE", "SCHEMA_VERSION", "build_bundle", "ordered_spans", "bundle_size", "TEXT_LIMIT", "MAX_BYTES"]

MIME_TYPE = "application/vnd.workbench.trace+json"
SCHEMA_VERSION = 1
TEXT_LIMIT = 2000  # characters kept of each string payload
MAX_BYTES = 256 * 1024  # the JSON payload of one trace in the notebook, at most
_SHORTER = (500, 120)  # string limits tried in turn when a trace is over the cap, before payloads are dropped


def ordered_spans(spans: list[SpanRecord]) -> list[tuple[SpanRecord, int]]:
    """(span, depth) depth-first, children in start order; a span whose parent is missing is a root."""
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[SpanRecord]] = {}
    for span in spans:
        parent = span.parent_id if span.parent_id in ids else None
        children.setdefault(parent, []).append(span)
    for group in children.values():
        group.sort(key=lambda s: s.start_ns)
    out: list[tuple[SpanRecord, int]] = []
    stack = [(s, 0) for s in reversed(children.get(None, []))]
    while stack:
        span, depth = stack.pop()
        out.append((span, depth))
        stack.extend((c, depth + 1) for c in reversed(children.get(span.span_id, [])))
    return out


def _is_call(span: SpanRecord) -> bool:
    """An LLM call: an answered one carries its tokens; a failed one is the gateway's span that failed (its
    failed tries are child spans with `retryable`, counted under it, not as calls of their own)."""
    if span.kind != "llm" or "retryable" in span.attributes:
        return False
    return "prompt_tokens" in span.attributes or (span.status == "ERROR" and "model" in span.attributes)


def _totals(spans: list[SpanRecord]) -> dict[str, Any]:
    calls = [s for s in spans if _is_call(s)]
    llm = [s for s in calls if "prompt_tokens" in s.attributes]
    costs = [s.attributes.get("cost_usd") for s in llm]
    known = [c for c in costs if isinstance(c, int | float)]
    return {
        "spans": len(spans),
        "errors": sum(s.status == "ERROR" for s in spans),
        "llm_calls": len(calls),
        "llm_failed": sum(s.status == "ERROR" for s in calls),
        "prompt_tokens": sum(int(s.attributes.get("prompt_tokens") or 0) for s in llm),
        "completion_tokens": sum(int(s.attributes.get("completion_tokens") or 0) for s in llm),
        "cost_usd": sum(known) if known else None,
    }


def build_bundle(trace: TraceRecord, *, text_limit: int = TEXT_LIMIT, max_bytes: int = MAX_BYTES,
                 now_ns: int | None = None) -> dict[str, Any]:
    """The JSON payload of the trace's MIME bundle; all text scrubbed of secrets."""
    spans = list(trace.spans)  # a trace still open may grow meanwhile
    order = ordered_spans(spans)
    start = min((s.start_ns for s, _ in order), default=0)
    ends = [s.end_ns for s, _ in order if s.end_ns is not None]
    end = max(ends, default=start) if len(ends) == len(order) else max([now_ns or start, *ends])
    # one redaction pass over all inputs/outputs, one over the rest; the first also tells their JSON size
    payloads, payload_chars = scrub_sized([[s.inputs, s.outputs] for s, _ in order])
    meta = scrub_many([(s.attributes, s.error_message) for s, _ in order])
    items = [(span, depth, io[0], io[1], m[0], m[1])
             for (span, depth), io, m in zip(order, payloads, meta, strict=True)]
    head = {
        "version": SCHEMA_VERSION,
        "trace_id": trace.trace_id,
        "name": trace.name,
        "status": trace.status,
        "start_time_ms": start / 1e6,
        "duration_ms": (end - start) / 1e6,
        "tags": scrub(trace.tags),
        "lineage": scrub(trace.lineage),
        "totals": _totals(spans),
    }
    n = len(items)
    bare = [_entry(item, start, text_limit, False) for item in items]
    bare_bundle = dict(head, limits=_limits(text_limit, max_bytes, False, 0, True), spans=bare)
    bare_size = len(dumps(bare_bundle))
    longest = [0]
    entries = [_entry(item, start, text_limit, True, longest) for item in items]
    bundle = dict(head, limits=_limits(text_limit, max_bytes, True, 0, False), spans=entries)
    if longest[0] <= text_limit:  # nothing truncated: the size follows from the sizes already known
        # payload text is [[in,out],...]: 2 brackets, 3 chars per pair, n-1 commas; each null was 4 chars
        size = bare_size + (payload_chars - 2 - 3 * n - max(n - 1, 0)) - 8 * n + 2  # two "true" become "false"
    else:
        size = len(dumps(bundle))
    if size <= max_bytes:
        return bundle
    for limit in _SHORTER:  # shorter strings, while that can still change anything
        if limit >= min(longest[0], text_limit):
            continue
        entries = [_entry(item, start, limit, True) for item in items]
        bundle = dict(head, limits=_limits(limit, max_bytes, True, 0, True), spans=entries)
        if len(dumps(bundle)) <= max_bytes:
            return bundle
    if bare_size <= max_bytes:
        return bare_bundle
    # still too big: keep the first spans that fit (their ancestors come first in depth-first order)
    budget = max_bytes - len(dumps(dict(bare_bundle, spans=[]))) - 200
    kept, used = [], 0
    for entry in bare:
        used += len(dumps(entry)) + 1
        if used > budget:
            break
        kept.append(entry)
    bare_bundle["spans"] = kept
    bare_bundle["limits"] = _limits(text_limit, max_bytes, False, n - len(kept), True)
    return bare_bundle


def _limits(limit: int, max_bytes: int, payloads: bool, omitted: int, reduced: bool) -> dict[str, Any]:
    return {"text_chars": limit, "max_bytes": max_bytes, "payloads_omitted": not payloads,
            "spans_omitted": omitted, "reduced": reduced}


def _entry(item: tuple, start: int, limit: int, payloads: bool, longest: list[int] | None = None) -> dict[str, Any]:
    span, depth, inputs, outputs, attributes, message = item
    error = None
    if span.status == "ERROR":
        error = {"type": span.error_type or "Error", "message": truncate(message or "", limit)}
    return {
        "id": span.span_id,
        "parent_id": span.parent_id,
        "depth": depth,
        "name": span.name,
        "kind": span.kind,
        "start_ms": (span.start_ns - start) / 1e6,
        "duration_ms": None if span.end_ns is None else (span.end_ns - span.start_ns) / 1e6,
        "status": span.status,
        "error": error,
        "inputs": truncate(inputs, limit, longest) if payloads else None,
        "outputs": truncate(outputs, limit, longest) if payloads else None,
        "attributes": truncate(attributes, min(limit, 500)) if attributes else {},
    }


def bundle_size(bundle: dict[str, Any]) -> int:
    return len(json.dumps(bundle, ensure_ascii=False))
