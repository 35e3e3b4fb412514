"""What a `%%llm` cell shows: MIME bundles for answers, columns, footers and error lines, and a live handle.

Model text is untrusted: every format escapes it except `-f html`, which the user asks for by name.
Markdown is rendered here with raw HTML off, because JupyterLab does not sanitize live Markdown output.
Everything is shown verbatim: MathJax would typeset "$5 ... $10" as maths (see workbench/verbatim.py), so
only `-f math` lets it typeset the answer (never the footer or an error).
Every bundle carries text/plain too, so nbclient runs and exported notebooks read well.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.gateway.prices import format_usd
from workbench.notebook.markdown import markdown_html, math_html
from workbench.secrets import redact
from workbench.verbatim import NO_MATH

if TYPE_CHECKING:
    from workbench.gateway.response import Response

__all__ = ["Column", "render", "error_bundle", "footer_text", "markdown_html", "math_html", "LiveDisplay",
           "UPDATE_INTERVAL_S", "SHOW_MAX_CHARS", "MARKDOWN_MAX_CHARS"]

SHOW_MAX_CHARS = 100_000  # what a cell shows of one answer (the notebook keeps it twice: HTML and plain text)
MARKDOWN_MAX_CHARS = 20_000  # longer answers are shown as text: Markdown parsing is superlinear on degenerate input
UPDATE_INTERVAL_S = 0.15  # a display update costs a message to the frontend: at most ~7 a second
_ERROR_STYLE = "color:#c62828;font-family:var(--jp-code-font-family,monospace);white-space:pre-wrap"
_FOOTER_STYLE = "color:#757575;font-size:0.85em;margin-top:0.4em"


@dataclass
class Column:
    """One model's part of a cell's output; a cell with several -m has one each."""

    model: str  # as asked
    state: str = "waiting"  # waiting | asking | streaming | done | error | stopped
    text: str = ""
    response: Response | None = None
    error: BaseException | None = None
    value: Any = None  # -f json: the parsed value; -f code: the code
    language: str = ""  # -f code: the fence's language


def _latency(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def footer_text(response: Response) -> str:
    """model · tokens · cost · latency [· cache hit] [· fallback from X]: one line under the answer."""
    cost = format_usd(response.cost_usd) if response.cost_usd is not None else (
        "cost counted by the team gateway (%llm spend --team)" if response.model.startswith("team/")
        else "unpriced (see set_price)")
    parts = [
        response.model_used,
        f"{response.total_tokens} tokens ({response.prompt_tokens} in, {response.completion_tokens} out)",
        cost,
        _latency(response.latency_ms),
    ]
    if response.cache_hit:
        parts.append("cache hit")
    if response.fell_back:
        failed = ", ".join(dict.fromkeys(a.model for a in response.attempts)) or response.model
        parts.append(f"fallback: {failed} failed")
    if response.trace_id:
        parts.append(f"%trace {response.trace_id}")  # the footer offers the tree: copy it into a cell
    return " · ".join(parts)


def _one_line(exc: BaseException) -> str:
    # every error a cell shows is redacted once more here: a message may quote a tracking URI or a key
    return f"{type(exc).__name__}: " + " ".join(redact(str(exc)).split())


def error_bundle(exc: BaseException) -> tuple[dict[str, str], dict[str, Any]]:
    """A WorkbenchError as one red line (no traceback)."""
    line = _one_line(exc)
    data = {"text/plain": line,
            "text/html": f'<div class="wb-error {NO_MATH}" style="{_ERROR_STYLE}">{html.escape(line)}</div>'}
    return data, {"workbench": {"error": type(exc).__name__, "message": redact(str(exc))}}


def _pre(text: str, language: str = "") -> str:
    cls = f' class="language-{html.escape(language, quote=True)}"' if language else ""
    return f"<pre><code{cls}>{html.escape(text)}</code></pre>"


def _capped(text: str, limit: int) -> tuple[str, str]:
    """(what to show, a note when cut): a cell shows a bounded answer; the whole one stays in `_llm.text`."""
    if len(text) <= limit:
        return text, ""
    return text[:limit], (f"… showing the first {limit:,} of {len(text):,} characters; "
                          "the whole answer is in _llm.text")


def _note_html(note: str) -> str:
    return f'<div class="wb-truncated" style="{_FOOTER_STYLE}">{html.escape(note)}</div>' if note else ""


def _body(column: Column, fmt: str) -> tuple[str, str]:
    """(html, plain) for the answer part of a column, capped (SHOW_MAX_CHARS) so a huge answer cannot bloat
    the notebook or stall the browser; Markdown is rendered only up to MARKDOWN_MAX_CHARS (its parser is
    superlinear on degenerate input, and a stream re-renders on every update)."""
    if column.state in ("waiting", "asking"):
        note = f"{column.state} for {column.model}..." if column.state == "waiting" else f"asking {column.model}..."
        return f'<div style="{_FOOTER_STYLE}">{html.escape(note)}</div>', note
    if column.state == "error" and column.error is not None:
        line = _one_line(column.error)
        return f'<div class="wb-error {NO_MATH}" style="{_ERROR_STYLE}">{html.escape(line)}</div>', line
    text, note = _capped(column.text, SHOW_MAX_CHARS)
    plain = f"{text}\n{note}" if note else text
    if column.state == "done":
        if fmt == "json":
            pretty, note = _capped(json.dumps(column.value, indent=2, ensure_ascii=False), SHOW_MAX_CHARS)
            return _pre(pretty, "json") + _note_html(note), f"{pretty}\n{note}" if note else pretty
        if fmt == "code":
            code, note = _capped(column.value, SHOW_MAX_CHARS)
            return _pre(code, column.language) + _note_html(note), f"{code}\n{note}" if note else code
        if fmt == "text":
            return _pre(text) + _note_html(note), plain
        if fmt == "html" and not note:
            return text, text  # -f html: the user's explicit opt-in to the model's own markup (cut markup: text)
    if fmt in ("markdown", "math") and len(column.text) <= MARKDOWN_MAX_CHARS:
        return (math_html if fmt == "math" else markdown_html)(text), plain
    if fmt in ("markdown", "math") and not note:
        note = f"{len(column.text):,} characters: too long to render as Markdown, shown as text"
    return _pre(text) + _note_html(note), plain  # partial json/code/html: plain text until it is whole


def _footer(column: Column) -> str:
    if column.response is not None and column.state == "done":
        return footer_text(column.response)
    if column.state == "streaming":
        return f"{column.model} · streaming... {len(column.text)} characters"
    if column.state == "stopped":
        return f"{column.model} · stopped (Ctrl-C) after {len(column.text)} characters; nothing was kept"
    return ""


def _metadata(column: Column, fmt: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"model": column.model, "status": column.state, "format": fmt}
    response = column.response
    if response is not None:
        meta.update(
            model_used=response.model_used,
            prompt_tokens=response.prompt_tokens,
            completion_tokens=response.completion_tokens,
            total_tokens=response.total_tokens,
            cost_usd=response.cost_usd,
            latency_ms=round(response.latency_ms, 1),
            cache_hit=response.cache_hit,
            fell_back=response.fell_back,
            trace_id=response.trace_id,
        )
    if column.error is not None:
        meta["error"] = type(column.error).__name__
    return meta


def _footer_html(footer: str) -> str:
    """The footer escaped, its `%trace tr-...` marked so the labextension opens the trace on a click."""
    head, sep, trace = footer.rpartition(" · %trace ")
    if not sep:
        return html.escape(footer)
    return (f'{html.escape(head)} · <span class="wb-trace-link" title="open the trace (click)" '
            f'style="text-decoration:underline dotted;cursor:pointer">%trace {html.escape(trace)}</span>')


def _column_parts(column: Column, fmt: str) -> tuple[str, str]:
    body_html, body_text = _body(column, fmt)
    footer = _footer(column)
    footer_html = (f'<div class="wb-footer {NO_MATH}" style="{_FOOTER_STYLE}">{_footer_html(footer)}</div>'
                   if footer else "")
    plain = f"{body_text}\n{footer}" if footer else body_text
    return body_html + footer_html, plain


def _outer(fmt: str) -> str:
    return "wb-llm" if fmt == "math" else f"wb-llm {NO_MATH}"


def render(columns: list[Column], fmt: str) -> tuple[dict[str, str], dict[str, Any]]:
    """The bundle (text/html + text/plain) and metadata for a cell's current state."""
    if len(columns) == 1:
        body, plain = _column_parts(columns[0], fmt)
        data = {"text/plain": plain, "text/html": f'<div class="{_outer(fmt)}">{body}</div>'}
        return data, {"workbench": _metadata(columns[0], fmt)}
    cells, texts = [], []
    for column in columns:
        body, plain = _column_parts(column, fmt)
        title = html.escape(column.model)
        cells.append(
            '<div class="wb-llm-column" '
            'style="flex:1 1 0;min-width:0;border-left:3px solid #e0e0e0;padding-left:0.6em">'
            f'<div style="font-weight:600;margin-bottom:0.3em">{title}</div>{body}</div>'
        )
        texts.append(f"── {column.model} ──\n{plain}")
    data = {
        "text/plain": "\n\n".join(texts),
        "text/html": f'<div class="{_outer(fmt)} wb-llm-columns" style="display:flex;gap:1em;align-items:flex-start">'
        + "".join(cells) + "</div>",
    }
    return data, {"workbench": {"format": fmt, "columns": [_metadata(c, fmt) for c in columns]}}


class LiveDisplay:
    """One display handle per call, updated in place (never clear_output), at most every UPDATE_INTERVAL_S."""

    def __init__(self, interval_s: float = UPDATE_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._handle: Any = None
        self._last = 0.0

    @property
    def shown(self) -> bool:
        return self._handle is not None

    def show(self, data: dict[str, str], metadata: dict[str, Any], *, force: bool = True) -> bool:
        """Show or update; with force=False, skip when the last update was under interval_s ago."""
        now = time.monotonic()
        if not force and self._handle is not None and now - self._last < self.interval_s:
            return False
        if self._handle is None:
            from IPython.display import display

            self._handle = display(data, metadata=metadata, raw=True, display_id=True)
        else:
            self._handle.update(data, metadata=metadata, raw=True)
        self._last = now
        return True
