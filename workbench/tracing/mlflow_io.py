"""Our TraceRecord <-> MLflow's Trace: spans as OTel ReadableSpans with MLflow's attribute keys.

Our own attributes travel as `workbench.<key>` span attributes, lineage as `workbench.<field>` trace tags,
so a trace read back from the store renders the same tree. Every payload is scrubbed of secrets here,
in the exporter's thread.
"""

from __future__ import annotations

import json
import re
from typing import Any

from workbench.identity import user
from workbench.tracing.payload import dumps as _dumps
from workbench.tracing.payload import scrub
from workbench.tracing.records import SpanRecord, TraceRecord

__all__ = ["to_mlflow", "from_mlflow", "clean", "dumps", "TAG_PREFIX"]

TAG_PREFIX = "workbench."
_TAG_MAX = 4000  # MLflow keeps tag values up to 4096 characters
_PREVIEW_MAX = 1000


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean(text: str) -> str:
    """`text` as valid UTF-8: a lone surrogate (a file name from a non-UTF-8 folder, decoded with
    surrogateescape) becomes U+FFFD, which MLflow can store; otherwise the whole batch would be refused."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def dumps(value: Any) -> str:
    return clean(_dumps(value))


def _span_type(kind: str) -> str:
    return kind.upper()


def _mlflow_span(trace_id: str, record: SpanRecord, trace_end_ns: int, extra: dict[str, str] | None = None) -> Any:
    from mlflow.entities import Span
    from mlflow.tracing.constant import SpanAttributeKey as Key
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags

    otel_trace = int(trace_id.removeprefix("tr-"), 16)

    def context(span_id: str) -> SpanContext:
        return SpanContext(otel_trace, int(span_id, 16), is_remote=False, trace_flags=TraceFlags(1))

    payload = scrub({"inputs": record.inputs, "outputs": record.outputs, "attributes": record.attributes,
                     "error": record.error_message})
    attrs = payload["attributes"] or {}
    attributes: dict[str, str] = {
        Key.REQUEST_ID: json.dumps(trace_id),
        Key.SPAN_TYPE: json.dumps(_span_type(record.kind)),
        Key.INPUTS: dumps(payload["inputs"]),
        Key.OUTPUTS: dumps(payload["outputs"]),
    }
    for key, value in attrs.items():
        attributes[clean(TAG_PREFIX + str(key))] = dumps(value)
    if extra:
        attributes.update(extra)
    if record.kind == "llm" and "prompt_tokens" in attrs:
        usage = {"input_tokens": attrs.get("prompt_tokens") or 0, "output_tokens": attrs.get("completion_tokens") or 0}
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
        attributes[Key.CHAT_USAGE] = dumps(usage)
        if attrs.get("model_used"):
            attributes[Key.MODEL] = dumps(attrs["model_used"])
        if isinstance(attrs.get("cost_usd"), int | float):
            attributes[Key.LLM_COST] = dumps({"total_cost": attrs["cost_usd"]})
    events = []
    if record.status == "ERROR":
        status = Status(StatusCode.ERROR, clean(payload["error"] or ""))
        events.append(Event("exception", {"exception.type": clean(record.error_type or "Error"),
                                          "exception.message": clean(payload["error"] or "")},
                            timestamp=record.end_ns or trace_end_ns))
    else:
        status = Status(StatusCode.OK if record.status == "OK" else StatusCode.UNSET)
    otel = ReadableSpan(
        name=clean(str(record.name)), context=context(record.span_id),
        parent=context(record.parent_id) if record.parent_id else None,
        start_time=record.start_ns, end_time=record.end_ns or trace_end_ns, attributes=attributes,
        status=status, events=events, resource=Resource.get_empty(),
    )
    return Span(otel)


def to_mlflow(trace: TraceRecord, experiment_id: str) -> tuple[Any, list[Any]]:
    """(TraceInfo, spans) ready for TracingClient.start_trace and log_spans."""
    from mlflow.entities import TraceInfo, TraceLocation, TraceState
    from mlflow.tracing.constant import SpanAttributeKey, TraceMetadataKey, TraceTagKey

    end_ns = trace.end_ns or max((s.start_ns for s in trace.spans), default=0)
    root = trace.root
    tags = {clean(str(k)[:250]): clean(str(v)[:_TAG_MAX]) for k, v in scrub(trace.tags).items()}
    tags[TraceTagKey.TRACE_NAME] = clean(str(trace.name)[:250])
    tags.setdefault(TAG_PREFIX + "user", clean(trace.user or user()))  # who made it: a team filters traces by person
    for key, value in scrub(trace.lineage).items():
        text = value if isinstance(value, str) else dumps(value)
        tags[clean(TAG_PREFIX + key)] = clean(text[:_TAG_MAX])
    if trace.lineage.get("prompt_name") and trace.lineage.get("prompt_version") is not None:
        tags[TraceTagKey.LINKED_PROMPTS] = dumps(
            [{"name": str(trace.lineage["prompt_name"]), "version": str(trace.lineage["prompt_version"])}])
    # Tags also ride on the root span (MLflow's OTLP convention), so log_spans alone creates a complete trace.
    carried = {SpanAttributeKey.TRACE_TAG_PREFIX + k: v for k, v in tags.items()}
    spans = [_mlflow_span(trace.trace_id, record, end_ns, carried if record is root else None)
             for record in trace.spans]
    llm = [s.attributes for s in trace.spans if s.kind == "llm" and "prompt_tokens" in s.attributes]
    metadata: dict[str, str] = {TraceMetadataKey.TRACE_USER: tags[TAG_PREFIX + "user"]}
    if llm:
        prompt = sum(a.get("prompt_tokens") or 0 for a in llm)
        completion = sum(a.get("completion_tokens") or 0 for a in llm)
        metadata[TraceMetadataKey.TOKEN_USAGE] = dumps(
            {"input_tokens": prompt, "output_tokens": completion, "total_tokens": prompt + completion})
        costs = [a["cost_usd"] for a in llm if isinstance(a.get("cost_usd"), int | float)]
        if costs:
            metadata[TraceMetadataKey.COST] = dumps({"total_cost": sum(costs)})
    if trace.run_id:
        metadata[TraceMetadataKey.SOURCE_RUN] = trace.run_id
    root_span = spans[[s.span_id for s in trace.spans].index(root.span_id)] if root else None
    state = {"OK": TraceState.OK, "ERROR": TraceState.ERROR}.get(trace.status, TraceState.IN_PROGRESS)
    info = TraceInfo(
        trace_id=trace.trace_id,
        trace_location=TraceLocation.from_experiment_id(experiment_id),
        request_time=trace.start_ns // 1_000_000,
        state=state,
        request_preview=_preview(root_span, "mlflow.spanInputs") if root_span else None,
        response_preview=_preview(root_span, "mlflow.spanOutputs") if root_span else None,
        execution_duration=max(0, (end_ns - trace.start_ns) // 1_000_000),
        trace_metadata=metadata,
        tags=tags,
    )
    return info, spans


def _preview(span: Any, key: str) -> str:
    raw = span._span.attributes.get(key) or ""
    return raw[:_PREVIEW_MAX]


def _loads(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def from_mlflow(trace: Any) -> TraceRecord:
    """A TraceRecord from an MLflow Trace (any trace, also ones MLflow's own tracing made)."""
    info = trace.info
    tags = dict(info.tags or {})
    lineage = {k.removeprefix(TAG_PREFIX): _loads(v) if k.endswith(("variables", "execution_count")) else v
               for k, v in tags.items() if k.startswith(TAG_PREFIX)}
    user_tags = {k: v for k, v in tags.items() if not k.startswith(("mlflow.", TAG_PREFIX))}
    record = TraceRecord(info.trace_id, "", tags=user_tags, lineage=lineage,
                         run_id=(info.trace_metadata or {}).get("mlflow.sourceRun"),
                         experiment_id=getattr(info, "experiment_id", None), finished=True)
    for span in trace.data.spans:
        raw = span._span.attributes or {}
        attributes = {k.removeprefix(TAG_PREFIX): _loads(v) for k, v in raw.items() if k.startswith(TAG_PREFIX)}
        status_code = span.status.status_code
        code = status_code.value if hasattr(status_code, "value") else str(status_code)
        status = {"OK": "OK", "ERROR": "ERROR"}.get(code, "OK" if span.end_time_ns else "IN_PROGRESS")
        error_type = None
        for event in getattr(span, "events", None) or []:
            if event.name == "exception":
                error_type = (event.attributes or {}).get("exception.type")
        kind = (span.span_type or "UNKNOWN").lower()
        record.spans.append(SpanRecord(
            span.span_id, span.parent_id, span.name, kind, span.start_time_ns, span.end_time_ns, status,
            (error_type or "Error") if status == "ERROR" else None,
            (span.status.description or "") if status == "ERROR" else None,
            span.inputs, span.outputs, attributes,
        ))
    return record
