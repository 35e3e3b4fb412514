"""The gateway observer: each finished call becomes an LLM span (and one child span per failed attempt).

Runs in the caller's thread right after the call, so it only builds plain records: no serialization,
no redaction, no MLflow (all of that happens in the exporter's thread).
"""

from __future__ import annotations

from typing import Any

from workbench.config import settings
from workbench.gateway import team
from workbench.gateway.hooks import CallRecord, add_observer
from workbench.tracing import context, exporter, memory
from workbench.tracing.records import SpanRecord, new_span_id

__all__ = ["observe", "install"]

_installed = False


def install() -> None:
    """Register the observer with the gateway (idempotent; done when this module is imported)."""
    global _installed
    if not _installed:
        add_observer(observe)
        _installed = True


def _ns(epoch_s: float) -> int:
    return int(epoch_s * 1e9)


def observe(record: CallRecord) -> str | None:
    if exporter.undelivered:  # a warning found by the exporter's thread is shown in the caller's thread
        exporter.deliver_warnings()
    if settings().tracing == "off":
        return None
    parent = context.current_span()
    trace = parent[0] if parent else context.new_trace()
    if parent:
        found = context.current_lineage()
        if found:
            for key, value in found.items():
                trace.lineage.setdefault(key, value)
    response = record.response
    attributes: dict[str, Any] = {"model": record.model, "stream": record.stream}
    if record.tags:
        attributes["tags"] = record.tags
        for key, value in record.tags.items():
            trace.tags.setdefault(key, value)
    outputs = None
    if response is not None:
        attributes.update(
            model_used=response.model_used, prompt_tokens=response.prompt_tokens,
            completion_tokens=response.completion_tokens, cost_usd=response.cost_usd,
            latency_ms=response.latency_ms, cache_hit=response.cache_hit, fell_back=response.fell_back,
            finish_reason=response.finish_reason,
        )
        outputs = response.text if not response.tool_calls else {"text": response.text,
                                                                  "tool_calls": response.tool_calls}
    if record.attempts:
        attributes["failed_attempts"] = len(record.attempts)
    if team.is_team(record.model):  # the team gateway keeps its own trace of the call: say where
        attributes["team_endpoint"] = team.endpoint_of(record.model)
        link = team.gateway_traces_url(record.model)
        if link:
            attributes["gateway_traces"] = link
    llm = SpanRecord(new_span_id(), parent[1].span_id if parent else None, record.model, "llm",
                     _ns(record.started_at), _ns(record.ended_at), "OK",
                     inputs={"messages": record.messages, "params": record.params}, outputs=outputs,
                     attributes=attributes)
    if record.error is not None and response is None:
        llm.fail(type(record.error).__name__, str(record.error))
    trace.spans.append(llm)
    for number, attempt in enumerate(record.attempts, 1):
        start = _ns(attempt.started_at) if attempt.started_at else llm.start_ns
        child = SpanRecord(new_span_id(), llm.span_id, f"{attempt.model} (attempt {number})", "llm", start,
                           start + int(attempt.latency_ms * 1e6), "ERROR", attempt.error_type, attempt.message,
                           attributes={"model": attempt.model, "attempt": number, "retryable": attempt.retryable,
                                       "latency_ms": attempt.latency_ms})
        trace.spans.append(child)
    run = context.current_run()
    if run is not None:
        with run.lock:
            run.calls += 1
            run.errors += response is None
            if response is not None:
                run.prompt_tokens += response.prompt_tokens
                run.completion_tokens += response.completion_tokens
                run.cost_usd += response.cost_usd or 0.0
                run.latency_ms += response.latency_ms
    if parent is None:
        memory.finish(trace)
    return trace.trace_id


install()  # importing tracing is what turns it on; the package face imports it before the first call
