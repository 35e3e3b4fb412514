"""show_trace() and TraceView: a trace that displays itself as the workbench MIME bundle.

The last few hundred traces of this process are read from memory; any other id is read back from MLflow
after a flush, so a trace made a moment ago is there.
"""

from __future__ import annotations

from typing import Any

from workbench.errors import NotFoundError, StoreError, WorkbenchError
from workbench.gateway.response import Response
from workbench.secrets import redact
from workbench.tracing import exporter, memory
from workbench.tracing.bundle import MIME_TYPE, build_bundle
from workbench.tracing.mlflow_io import from_mlflow
from workbench.tracing.records import TraceRecord, now_ns
from workbench.tracing.render_html import render_html, render_text
from workbench.tracking.backend import backend, current_uri
from workbench.tracking.gate import is_not_found

__all__ = ["TraceView", "show_trace", "get_trace", "last_trace_id"]


def last_trace_id() -> str | None:
    """The id of the last trace this process finished (None before the first call)."""
    return memory.last_trace_id()


def get_trace(trace_id: str | Response | None = None) -> TraceRecord:
    """The trace as plain records: from memory when recent, else from MLflow (waiting traces flushed first)."""
    if trace_id is None:
        trace_id = memory.last_trace_id()
        if trace_id is None:
            raise WorkbenchError("no trace yet in this session: make a call (workbench.complete or %%llm) first, "
                                 "or pass a trace id, e.g. show_trace('tr-...')")
    trace_id = getattr(trace_id, "trace_id", None) or trace_id  # a Response works too
    if not isinstance(trace_id, str) or not trace_id.strip():
        raise WorkbenchError(f"trace id {trace_id!r} is not a trace id: pass e.g. 'tr-6c1f...' (Response.trace_id)")
    trace_id = trace_id.strip()
    found = memory.recent(trace_id)
    if found is not None:
        return found
    exporter.flush()
    opened = backend(current_uri())
    try:
        stored = opened.client.get_trace(trace_id)
    except Exception as exc:
        text = str(exc)
        if is_not_found(exc):
            raise NotFoundError(f"no trace {trace_id!r} in {opened.uri.split('@')[-1]}: check the id "
                                 "(Response.trace_id, or the MLflow UI's Traces tab)") from None
        raise StoreError(f"reading trace {trace_id!r} failed: {redact(text)[:300]}") from exc
    return from_mlflow(stored)


class TraceView:
    """A trace for display: `_repr_mimebundle_` gives the workbench MIME type plus an HTML and a text fallback."""

    def __init__(self, trace: TraceRecord) -> None:
        self.trace = trace
        self._bundle: dict[str, Any] | None = None

    @property
    def trace_id(self) -> str:
        return self.trace.trace_id

    @property
    def bundle(self) -> dict[str, Any]:
        """The `application/vnd.workbench.trace+json` payload (schema in docs/trace-schema.md)."""
        if self._bundle is None or not self.trace.finished:
            self._bundle = build_bundle(self.trace, now_ns=now_ns())
        return self._bundle

    @property
    def html(self) -> str:
        return render_html(self.bundle)

    @property
    def text(self) -> str:
        return render_text(self.bundle)

    @property
    def spans(self) -> list[dict[str, Any]]:
        return self.bundle["spans"]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle = self.bundle
        return {MIME_TYPE: bundle, "text/html": render_html(bundle), "text/plain": render_text(bundle)}

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text


def show_trace(trace_id: str | Response | None = None) -> TraceView:
    """The last trace (or the one with this id, or a Response's) as a TraceView, which displays itself."""
    return TraceView(get_trace(trace_id))
