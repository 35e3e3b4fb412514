"""User spans, the `@traced` decorator, cell lineage and the active run, carried in contextvars.

contextvars (not thread-locals) so a span open in a cell is the parent of calls made inside it, also
through `asyncio.to_thread` (which copies the context); a plain worker thread starts a new trace.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar, overload

from workbench.config import settings
from workbench.errors import ConfigError
from workbench.identity import user
from workbench.tracing import memory
from workbench.tracing.records import KINDS, SpanRecord, TraceRecord, new_span_id, new_trace_id, now_ns
from workbench.tracking.active import RunRef, current_run, set_session_run, use_run

__all__ = ["Span", "span", "traced", "lineage", "current_span", "current_lineage", "RunRef", "current_run",
           "set_session_run", "LINEAGE_FIELDS", "use_run", "cell_lineage", "current_cell"]

F = TypeVar("F", bound=Callable[..., Any])

# What the notebook layer can say about the cell a call came from.
LINEAGE_FIELDS = ("notebook", "execution_count", "cell_id", "template", "variables", "prompt_name", "prompt_version")

_current: ContextVar[tuple[TraceRecord, SpanRecord] | None] = ContextVar("workbench_span", default=None)
# The one lineage variable: (lineage() fields, the cell's fields, the cell object the notebook layer set).
_lineage: ContextVar[tuple[dict[str, Any], dict[str, Any], Any] | None] = ContextVar("workbench_lineage",
                                                                                      default=None)


def current_span() -> tuple[TraceRecord, SpanRecord] | None:
    return _current.get()


def current_lineage() -> dict[str, Any] | None:
    """lineage() fields, over those the %%llm magic set for its cell."""
    found = _lineage.get()
    if found is None:
        return None
    explicit, cell_fields, _ = found
    if not cell_fields:
        return explicit or None
    return {**cell_fields, **explicit} if explicit else dict(cell_fields)


def current_cell() -> Any:
    """The object the notebook layer passed to `cell_lineage` for the cell running now (None outside one)."""
    found = _lineage.get()
    return found[2] if found is not None else None


@contextmanager
def cell_lineage(cell: Any, fields: dict[str, Any]) -> Iterator[Any]:
    """Mark every trace started inside with the cell's lineage `fields`; `current_cell()` returns `cell` meanwhile.

    The notebook layer (a higher floor) calls this; explicit lineage() fields still win over the cell's.
    """
    unknown = sorted(set(fields) - set(LINEAGE_FIELDS))
    if unknown:
        raise ConfigError(f"cell lineage got {', '.join(unknown)}: known fields are {', '.join(LINEAGE_FIELDS)}")
    explicit = _lineage.get()
    token = _lineage.set((explicit[0] if explicit else {}, {k: v for k, v in fields.items() if v is not None}, cell))
    try:
        yield cell
    finally:
        _lineage.reset(token)


@contextmanager
def lineage(**fields: Any) -> Iterator[dict[str, Any]]:
    """Mark every trace started inside with where it came from: notebook, execution_count, cell_id,
    template (before interpolation), variables (names interpolated), prompt_name, prompt_version."""
    unknown = sorted(set(fields) - set(LINEAGE_FIELDS))
    if unknown:
        raise ConfigError(f"lineage() got {', '.join(unknown)}: known fields are {', '.join(LINEAGE_FIELDS)}")
    found = _lineage.get()
    merged = dict(found[0]) if found else {}
    merged.update({k: v for k, v in fields.items() if v is not None})
    token = _lineage.set((merged, found[1] if found else {}, found[2] if found else None))
    try:
        yield merged
    finally:
        _lineage.reset(token)


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        close = difflib.get_close_matches(str(kind), KINDS, n=1)
        hint = f"did you mean kind={close[0]!r}? " if close else ""
        raise ConfigError(f"kind={kind!r} is not a span kind: {hint}use one of {', '.join(KINDS)}")
    return kind


def _tracing_on() -> bool:
    return settings().tracing != "off"


_uri_cache: tuple[Any, str | None, str] | None = None


def _tracking_uri() -> str:
    """settings().effective_tracking_uri, remembered while the settings and MLFLOW_TRACKING_URI stay the same
    (building it joins paths: too slow to do on every call)."""
    global _uri_cache
    current, env = settings(), os.environ.get("MLFLOW_TRACKING_URI")
    cached = _uri_cache
    if cached is None or cached[0] is not current or cached[1] != env:
        cached = _uri_cache = (current, env, current.effective_tracking_uri)
    return cached[2]


def new_trace() -> TraceRecord:
    """A trace with the current lineage and run; the tracking URI is fixed now."""
    trace = TraceRecord(new_trace_id(), _tracking_uri(), user=user())
    found = current_lineage()
    if found:
        trace.lineage.update(found)
    run = current_run()
    if run is not None:
        trace.run_id, trace.experiment_id = run.run_id, run.experiment_id
    return trace


class Span:
    """A user step inside a trace (`with workbench.span(...) as s`). Exceptions mark it ERROR and propagate."""

    __slots__ = ("_trace", "_record", "_token", "_pending")

    def __init__(self, name: str, kind: str = "chain", inputs: Any = None,
                 attributes: dict[str, Any] | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"span name {name!r} must be a non-empty string, e.g. span('retrieve', kind='retriever')")
        check_kind(kind)
        self._trace: TraceRecord | None = None
        self._record: SpanRecord | None = None
        self._token: Any = None
        self._pending = (name, kind, inputs, dict(attributes or {}))

    def __enter__(self) -> Span:
        if not _tracing_on():
            return self
        name, kind, inputs, attributes = self._pending
        parent = _current.get()
        trace = parent[0] if parent else new_trace()
        record = SpanRecord(new_span_id(), parent[1].span_id if parent else None, name, kind, now_ns(),
                            inputs=inputs, attributes=attributes)
        trace.spans.append(record)
        self._trace, self._record = trace, record
        self._token = _current.set((trace, record))
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        record, trace = self._record, self._trace
        if record is None or trace is None:
            return
        record.end(exc)
        try:
            _current.reset(self._token)
        except ValueError:  # exited in another context (a generator resumed elsewhere): restore the parent
            _current.set(None)
        if record.parent_id is None:
            memory.finish(trace)

    # --- what a step reports about itself
    def set_inputs(self, inputs: Any) -> None:
        if self._record is not None:
            self._record.inputs = inputs

    def set_outputs(self, outputs: Any) -> None:
        if self._record is not None:
            self._record.outputs = outputs

    def set_attribute(self, key: str, value: Any) -> None:
        if self._record is not None:
            self._record.attributes[key] = value

    def set_attributes(self, attributes: dict[str, Any]) -> None:
        if self._record is not None:
            self._record.attributes.update(attributes)

    def set_error(self, message: str, error_type: str = "Error") -> None:
        """Mark the step failed without raising (e.g. a tool that returned an error code)."""
        if self._record is not None:
            self._record.fail(error_type, message)

    @property
    def trace_id(self) -> str | None:
        return self._trace.trace_id if self._trace else None

    @property
    def span_id(self) -> str | None:
        return self._record.span_id if self._record else None

    def __repr__(self) -> str:
        name, kind = self._pending[0], self._pending[1]
        return f"<Span {kind} {name!r} trace={self.trace_id}>"


def span(name: str, kind: str = "chain", *, inputs: object = None,
         attributes: dict[str, object] | None = None) -> Span:
    """A context manager for one user step; calls made inside become its children."""
    return Span(name, kind, inputs, attributes)


def _bound_inputs(signature: inspect.Signature | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if signature is None:
        return {"args": list(args), "kwargs": kwargs}
    try:
        bound = signature.bind_partial(*args, **kwargs)
    except TypeError:  # the call itself will raise the real error
        return {"args": list(args), "kwargs": kwargs}
    return {k: v for k, v in bound.arguments.items() if k not in ("self", "cls")}


@overload
def traced(fn: F, *, name: str | None = ..., kind: str = ..., capture: bool = ...) -> F: ...
@overload
def traced(fn: None = ..., *, name: str | None = ..., kind: str = ..., capture: bool = ...) -> Callable[[F], F]: ...


def traced(fn: F | None = None, *, name: str | None = None, kind: str = "chain",
           capture: bool = True) -> F | Callable[[F], F]:
    """Decorate a function (sync or async) so each call is a span; arguments and return value become its
    inputs and outputs unless capture=False."""
    check_kind(kind)

    def decorate(func: F) -> F:
        span_name: str = name or getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or "step"
        try:
            signature: inspect.Signature | None = inspect.signature(func)
        except (TypeError, ValueError):
            signature = None

        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with Span(span_name, kind, _bound_inputs(signature, args, kwargs) if capture else None) as s:
                    result = await func(*args, **kwargs)
                    if capture:
                        s.set_outputs(result)
                    return result

            return run_async  # type: ignore[return-value]

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            with Span(span_name, kind, _bound_inputs(signature, args, kwargs) if capture else None) as s:
                result = func(*args, **kwargs)
                if capture:
                    s.set_outputs(result)
                return result

        return run  # type: ignore[return-value]

    return decorate(fn) if callable(fn) else decorate
