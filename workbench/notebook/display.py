"""What a `%%llm` cell shows: MIME bundles for answers, columns, footers and error lines, and a live handle.

Model text is untrusted: every format escapes it except `-f html`, which the user asks for by name.
Markdown is rendered here with raw HTML off, because JupyterLab does not sanitize live Markdown output.
Every bundle carries text/plain too, so nbclient runs and exported notebooks read well.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.gateway.prices import format_usd

if TYPE_CHECKING:
    from workbench.gateway.response import Response

__all__ = ["Column", "render", "error_bundle", "footer_text", "markdown_html", "LiveDisplay", "UPDATE_INTERVAL_S"]

UPDATE_INTERVAL_S = 0.15  # a display update costs a message to the frontend: at most ~7 a second
_ERROR_STYLE = "color:#c62828;font-family:var(--jp-code-font-family,monospace);white-space:pre-wrap"
_FOOTER_STYLE = "color:#757575;font-size:0.85em;margin-top:0.4em"
_markdown: Any = None


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


def markdown_html(text: str) -> str:
    """Markdown to HTML with raw HTML disabled: `<script>` in an answer arrives as text."""
    global _markdown
    if _markdown is None:
        from markdown_it import MarkdownIt

        # breaks: chat models end lines where they mean a line break
        _markdown = MarkdownIt("commonmark", {"html": False, "breaks": True}).enable(["table", "strikethrough"])
    return _markdown.render(text)


def _latency(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def footer_text(response: Response) -> str:
    """model · tokens · cost · latency [· cache hit] [· fallback from X]: one line under the answer."""
    cost = format_usd(response.cost_usd) if response.cost_usd is not None else "unpriced (see set_price)"
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
    return f"{type(exc).__name__}: " + " ".join(str(exc).split())


def error_bundle(exc: BaseException) -> tuple[dict[str, str], dict[str, Any]]:
    """A WorkbenchError as one red line (no traceback)."""
    line = _one_line(exc)
    data = {"text/plain": line, "text/html": f'<div class="wb-error" style="{_ERROR_STYLE}">{html.escape(line)}</div>'}
    return data, {"workbench": {"error": type(exc).__name__, "message": str(exc)}}


def _pre(text: str, language: str = "") -> str:
    cls = f' class="language-{html.escape(language, quote=True)}"' if language else ""
    return f"<pre><code{cls}>{html.escape(text)}</code></pre>"


def _body(column: Column, fmt: str) -> tuple[str, str]:
    """(html, plain) for the answer part of a column."""
    if column.state in ("waiting", "asking"):
        note = f"{column.state} for {column.model}..." if column.state == "waiting" else f"asking {column.model}..."
        return f'<div style="{_FOOTER_STYLE}">{html.escape(note)}</div>', note
    if column.state == "error" and column.error is not None:
        line = _one_line(column.error)
        return f'<div class="wb-error" style="{_ERROR_STYLE}">{html.escape(line)}</div>', line
    text = column.text
    if column.state == "done":
        if fmt == "json":
            pretty = json.dumps(column.value, indent=2, ensure_ascii=False)
            return _pre(pretty, "json"), pretty
        if fmt == "code":
            return _pre(column.value, column.language), column.value
        if fmt == "text":
            return _pre(text), text
        if fmt == "html":
            return text, text  # -f html: the user's explicit opt-in to the model's own markup
    if fmt == "markdown":
        return markdown_html(text), text
    return _pre(text), text  # partial json/code/html: shown as plain text until it is whole


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


def _column_parts(column: Column, fmt: str) -> tuple[str, str]:
    body_html, body_text = _body(column, fmt)
    footer = _footer(column)
    footer_html = f'<div class="wb-footer" style="{_FOOTER_STYLE}">{html.escape(footer)}</div>' if footer else ""
    plain = f"{body_text}\n{footer}" if footer else body_text
    return body_html + footer_html, plain


def render(columns: list[Column], fmt: str) -> tuple[dict[str, str], dict[str, Any]]:
    """The bundle (text/html + text/plain) and metadata for a cell's current state."""
    if len(columns) == 1:
        body, plain = _column_parts(columns[0], fmt)
        data = {"text/plain": plain, "text/html": f'<div class="wb-llm">{body}</div>'}
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
        "text/html": '<div class="wb-llm wb-llm-columns" style="display:flex;gap:1em;align-items:flex-start">'
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
