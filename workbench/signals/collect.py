"""`workbench.feedback(...)`: a human's signal on one call, stored as MLflow assessments on its trace.

thumbs -> Feedback 'thumbs' (bool); stars -> Feedback 'stars' (1-5); correction -> Expectation
'expected_response' (the human's answer); comment -> Feedback 'comment'; preferred_over -> Feedback 'preferred'
(True on the winner, False on each loser, each naming the other trace). Source: HUMAN, the user's name.
The trace is flushed to MLflow first; a call without a trace (tracing off) is an error that says so.
Thumbs and stars hold one opinion per person: a new one overrides that person's earlier one (MLflow's
`overrides`, which marks the earlier assessment invalid and keeps it), so 👍 then 👎 leaves 👎 alone valid.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.config import settings
from workbench.errors import ConfigError, NotFoundError, StoreError, WorkbenchError
from workbench.gateway.response import Response
from workbench.identity import user
from workbench.scrub import scrub_text
from workbench.secrets import redact
from workbench.signals.journal import SignalRow, journal
from workbench.tracing import exporter
from workbench.tracing.view import get_trace
from workbench.tracking.backend import backend, current_uri
from workbench.tracking.gate import is_not_found

__all__ = ["feedback", "FeedbackRecord", "call_of", "stored_choice"]

_RETRIES = 8


@dataclass
class FeedbackRecord:
    trace_id: str
    assessments: dict[str, str] = field(default_factory=dict)  # signal -> MLflow assessment id

    def __repr__(self) -> str:
        return f"<FeedbackRecord {self.trace_id}: {', '.join(self.assessments) or 'nothing'}>"


def _trace_id(value: object) -> str:
    found = getattr(value, "trace_id", value)
    if found is None:
        raise WorkbenchError("this answer has no trace, so feedback has nowhere to go: tracing is off "
                             "(WORKBENCH_TRACING=0 or configure(tracing=False)); turn it on and ask again")
    if not isinstance(found, str) or not found.strip():
        raise ConfigError(f"trace id {value!r:.80} is not a trace id: pass a Response or its .trace_id ('tr-...')")
    return found.strip()


def call_of(trace_id: str) -> tuple[list[dict[str, Any]], str | None, str | None]:
    """(messages sent, answer, model) of the trace's first LLM call; WorkbenchError when there is no such trace."""
    trace = get_trace(trace_id)
    for span in trace.spans:
        inputs = span.inputs if isinstance(span.inputs, dict) else {}
        if span.kind == "llm" and isinstance(inputs.get("messages"), list):
            output = span.outputs if isinstance(span.outputs, str) else None
            model = span.attributes.get("model_used") or span.attributes.get("model")
            return inputs["messages"], output, model
    raise WorkbenchError(f"trace {trace_id!r} has no model call to give feedback on: pass the trace of a "
                         "workbench.complete / %%llm call")


def _ensure_stored(trace_id: str) -> Any:
    """The TracingClient, once the trace is in MLflow (waiting exports flushed)."""
    if settings().tracing != "on":  # "memory": the trace never reaches MLflow, so neither can its feedback
        raise WorkbenchError(f"feedback cannot be stored: tracing={settings().tracing!r} keeps traces out of MLflow; "
                             "set WORKBENCH_TRACING=on (or configure(tracing='on')) and ask again")
    exporter.flush()
    uri = current_uri()
    reason = exporter.off_reason(uri)
    if reason:
        raise WorkbenchError(f"feedback cannot be stored: tracing to MLflow is off for this session ({reason})")
    return backend(uri).client


def _log(client: Any, trace_id: str, assessment: Any) -> str:
    """One assessment, retried while another process holds the sqlite write lock."""
    for attempt in range(_RETRIES):
        try:
            return client.log_assessment(trace_id, assessment).assessment_id
        except Exception as exc:
            text = str(exc)
            if "locked" in text.lower() and attempt < _RETRIES - 1:
                time.sleep(0.05 * 2 ** attempt)
                continue
            if is_not_found(exc):
                raise NotFoundError(f"no trace {trace_id!r} in MLflow: check the id (Response.trace_id)") from None
            server = redact(str(getattr(client, "tracking_uri", None) or "MLflow"))
            raise StoreError(f"storing feedback on {trace_id} in {server} failed: "
                             f"{' '.join(redact(text).split())[:300]}") from exc
    raise AssertionError("unreachable")


def _check(thumbs: Any, stars: Any, correction: Any, comment: Any) -> tuple[bool | None, int | None]:
    if thumbs is not None and not isinstance(thumbs, bool):
        words = {"up": True, "down": False, "+1": True, "-1": False, "👍": True, "👎": False}
        if str(thumbs).strip().lower() not in words:
            raise ConfigError(f"thumbs={thumbs!r}: pass True (up) or False (down)")
        thumbs = words[str(thumbs).strip().lower()]
    if stars is not None:
        if isinstance(stars, bool) or not isinstance(stars, int | float) or stars != int(stars) or not 1 <= stars <= 5:
            raise ConfigError(f"stars={stars!r}: pass a whole number from 1 to 5")
        stars = int(stars)
    for name, value in (("correction", correction), ("comment", comment)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ConfigError(f"{name}={value!r:.60}: pass the text, or leave it out")
    return thumbs, stars


def feedback(trace_id: str | Response, thumbs: bool | None = None, stars: int | None = None,
             correction: str | None = None, comment: str | None = None, *,
             preferred_over: str | Response | Sequence[str | Response] | None = None,
             user: str | None = None) -> FeedbackRecord:
    """Record a human's signal on one call (a Response or its trace id): thumbs up/down, 1-5 stars, a
    corrected answer, a comment, or that it beat other answers (`preferred_over`: Responses or trace ids)."""
    trace_id = _trace_id(trace_id)
    thumbs, stars = _check(thumbs, stars, correction, comment)
    correction, comment = scrub_text(correction), scrub_text(comment)  # they go to MLflow and the journal
    losers = [] if preferred_over is None else [_trace_id(x) for x in (
        preferred_over if isinstance(preferred_over, list | tuple) else [preferred_over])]
    if thumbs is None and stars is None and correction is None and comment is None and not losers:
        raise ConfigError("feedback() got no signal: pass thumbs=, stars=, correction=, comment= or preferred_over=")
    if trace_id in losers:
        raise ConfigError("preferred_over names the same answer as the winner")
    messages, output, model = call_of(trace_id)
    client = _ensure_stored(trace_id)
    # mlflow only after the store is opened: backend() serializes its first import with the export thread's
    from mlflow.entities import AssessmentSource, Expectation, Feedback

    source_id = user or _user()
    source = AssessmentSource(source_type="HUMAN", source_id=source_id)
    record = FeedbackRecord(trace_id)
    rows: list[SignalRow] = []

    def add(kind: str, value: Any, assessment: Any, other: str | None = None, other_output: str | None = None) -> None:
        assessment_id = _log(client, trace_id, assessment)
        record.assessments[kind] = assessment_id
        rows.append(SignalRow(trace_id, kind, value, messages, output, model, other, other_output, assessment_id,
                              source_id))

    def choose(kind: str, value: Any) -> None:
        """One opinion per person: the same choice again changes nothing; another overrides the earlier one."""
        earlier = journal().latest(trace_id, kind, source_id)
        if earlier is not None and earlier.value == value and earlier.assessment_id:
            record.assessments[kind] = earlier.assessment_id
            return
        overrides = earlier.assessment_id if earlier is not None else None
        try:
            add(kind, value, Feedback(name=kind, value=value, source=source, overrides=overrides))
        except WorkbenchError:
            if overrides is None:
                raise
            # the earlier assessment is gone from MLflow (deleted, another store): this one stands alone
            add(kind, value, Feedback(name=kind, value=value, source=source))

    if thumbs is not None:
        choose("thumbs", thumbs)
    if stars is not None:
        choose("stars", stars)
    if correction is not None:
        add("correction", correction, Expectation(name="expected_response", value=correction, source=source,
                                                  metadata={"workbench.kind": "correction"}))
    if comment is not None:
        add("comment", comment, Feedback(name="comment", value=comment, source=source))
    for loser in losers:
        _, loser_output, _ = call_of(loser)
        add("preferred", True, Feedback(name="preferred", value=True, source=source, metadata={"over": loser}),
            loser, loser_output)
        _log(client, loser, Feedback(name="preferred", value=False, source=source, metadata={"lost_to": trace_id}))
    journal().add(rows)
    return record


def stored_choice(trace_id: str, kind: str, user: str | None = None) -> Any:
    """The value of this person's last `kind` signal (thumbs, stars) on the trace, or None. Reads the journal
    only where one exists: showing a bar must not create the home's signals store."""
    from workbench.config import settings

    if not (settings().home / "signals.sqlite").exists():
        return None
    row = journal().latest(trace_id, kind, user or _user())
    return None if row is None else row.value


def _user() -> str:
    return user()  # the MLflow username on a team server, so feedback is filtered by person like traces
