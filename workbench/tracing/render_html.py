"""The `text/html` fallback of a trace: nested `<details>` that read with no JavaScript and no CSS.

One summary line per span: status mark, kind, name, latency, a latency bar drawn with characters (so it
survives any sanitizer), tokens, cost, and the error in red. Inputs and outputs sit inside, in `<pre>`.
Every piece of text goes through html.escape: model output is untrusted.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from workbench.tracing.payload import TRUNCATED
from workbench.verbatim import NO_MATH

__all__ = ["render_html", "render_text", "llm_calls_text", "format_ms", "BAR_CELLS", "MAX_HTML_CHARS"]

BAR_CELLS = 24
MAX_HTML_CHARS = 512 * 1024
_MARK = {"OK": "\u2714", "ERROR": "\u2716", "IN_PROGRESS": "\u2026"}
_RED = "color:#c62828"
_BAR = "color:#3d6fb6"


def format_ms(ms: float | None) -> str:
    if ms is None:
        return "running"
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    if ms >= 10:
        return f"{ms:.0f} ms"
    return f"{ms:.1f} ms"


def _bar(start_ms: float, duration_ms: float | None, total_ms: float) -> str:
    total = total_ms if total_ms > 0 else 1.0
    offset = min(BAR_CELLS - 1, int(start_ms / total * BAR_CELLS))
    width = max(1, round((duration_ms if duration_ms is not None else total - start_ms) / total * BAR_CELLS))
    width = min(width, BAR_CELLS - offset)
    return "\u00b7" * offset + "\u2588" * width + "\u00b7" * (BAR_CELLS - offset - width)


def _display(value: Any) -> Any:
    """Truncation markers -> readable strings, for showing."""
    if isinstance(value, dict):
        if value.get(TRUNCATED) is True:
            return f"{value.get('preview', '')}\u2026 [truncated: {value.get('length', '?')} characters in all]"
        return {k: _display(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_display(v) for v in value]
    return value


def _text(value: Any) -> str:
    shown = _display(value)
    if isinstance(shown, str):
        return shown
    return json.dumps(shown, indent=1, ensure_ascii=False, default=str)


def _usage(span: dict[str, Any]) -> str:
    attrs = span.get("attributes") or {}
    parts = []
    if "prompt_tokens" in attrs:
        parts.append(f"{attrs.get('prompt_tokens') or 0}\u2192{attrs.get('completion_tokens') or 0} tok")
    cost = attrs.get("cost_usd")
    if isinstance(cost, int | float):
        parts.append(f"${cost:.6f}".rstrip("0").rstrip(".") if cost else "$0")
    if attrs.get("cache_hit"):
        parts.append("cache hit")
    if attrs.get("model_used") and attrs.get("model_used") != span.get("name"):
        parts.append(f"answered by {attrs['model_used']}")
    return " \u00b7 ".join(parts)


def _summary(span: dict[str, Any], total_ms: float) -> str:
    status = span.get("status", "OK")
    mark = escape(_MARK.get(status, "?"))
    style = _RED if status == "ERROR" else _BAR
    line = [
        f'<span style="{style}">{mark}</span>',
        f"<b>[{escape(str(span.get('kind', '')))}]</b>",
        escape(str(span.get("name", ""))),
        f"\u2014 {escape(format_ms(span.get('duration_ms')))}",
        f'<span style="{style}" title="when it ran within the trace">'
        f"{_bar(span.get('start_ms') or 0.0, span.get('duration_ms'), total_ms)}</span>",
    ]
    usage = _usage(span)
    if usage:
        line.append(escape(usage))
    error = span.get("error")
    if error:
        message = _display(error.get("message", ""))
        line.append(f'<span style="{_RED}">{escape(str(error.get("type", "Error")))}: {escape(str(message))}</span>')
    return " ".join(line)


def _payload(span: dict[str, Any]) -> str:
    blocks = []
    for label in ("inputs", "outputs"):
        value = span.get(label)
        if value is None or value == "" or value == {}:
            continue
        blocks.append(f"<div><i>{label}</i><pre style=\"white-space:pre-wrap;margin:0 0 4px 0\">"
                      f"{escape(_text(value))}</pre></div>")
    attrs = {k: v for k, v in (span.get("attributes") or {}).items() if k not in ("tags",)}
    if attrs:
        pairs = ", ".join(f"{k}={_display(v)}" for k, v in attrs.items())
        blocks.append(f"<div><i>attributes</i> <code>{escape(pairs)}</code></div>")
    return "".join(blocks)


def _open_ids(spans: list[dict[str, Any]]) -> set[str]:
    """Roots and every span on the way to an error start unfolded."""
    parents = {s["id"]: s.get("parent_id") for s in spans}
    opened = {s["id"] for s in spans if s.get("depth", 0) == 0}
    for span in spans:
        if span.get("status") == "ERROR":
            node = span.get("parent_id")
            while node is not None and node not in opened:
                opened.add(node)
                node = parents.get(node)
    return opened


def llm_calls_text(calls: int, failed: int) -> str:
    """"2 LLM calls" or "1 LLM call, 1 failed": a trace whose only call failed still made that call."""
    text = f"{calls} LLM call{'' if calls == 1 else 's'}"
    return f"{text}, {failed} failed" if failed else text


def _header(bundle: dict[str, Any]) -> str:
    totals = bundle.get("totals") or {}
    parts = [f"<b>trace</b> {escape(str(bundle.get('name', '')))}",
             f"<code>{escape(str(bundle.get('trace_id')))}</code>",
             escape(format_ms(bundle.get("duration_ms"))), f"{totals.get('spans', 0)} spans"]
    if totals.get("errors"):
        parts.append(f'<span style="{_RED}">{totals["errors"]} error(s)</span>')
    calls, failed = int(totals.get("llm_calls") or 0), int(totals.get("llm_failed") or 0)
    if calls:
        parts.append(escape(llm_calls_text(calls, failed)))
        parts.append(escape(f"{totals.get('prompt_tokens', 0)}\u2192{totals.get('completion_tokens', 0)} tok"))
    if isinstance(totals.get("cost_usd"), int | float):
        parts.append(escape(f"${totals['cost_usd']:.6f}"))
    lineage = bundle.get("lineage") or {}
    if lineage.get("execution_count") is not None or lineage.get("notebook"):
        where = f"{lineage.get('notebook') or 'cell'} [{lineage.get('execution_count', '?')}]"
        parts.append(escape(where))
    return " \u00b7 ".join(parts)


def render_html(bundle: dict[str, Any], *, max_chars: int = MAX_HTML_CHARS) -> str:
    """Nested <details> for the bundle's spans; payloads left out, then spans, if it would exceed max_chars."""
    html = _render(bundle, payloads=True)
    if len(html) > max_chars:
        html = _render(bundle, payloads=False)
    if len(html) > max_chars:
        html = _render(bundle, payloads=False, max_chars=max_chars)
    return html


def _render(bundle: dict[str, Any], *, payloads: bool, max_chars: int | None = None) -> str:
    spans = bundle.get("spans") or []
    total = float(bundle.get("duration_ms") or 0.0)
    opened = _open_ids(spans)
    out = [f'<div class="wb-trace {NO_MATH}" data-trace-id="{escape(str(bundle.get("trace_id")), quote=True)}" '
           f'style="font-family:monospace;font-size:12px;line-height:1.5">', f"<div>{_header(bundle)}</div>"]
    size = sum(map(len, out))
    depth_stack: list[int] = []
    shown = 0
    for span in spans:
        depth = int(span.get("depth") or 0)
        while depth_stack and depth_stack[-1] >= depth:
            depth_stack.pop()
            out.append("</div></details>")
        piece = (f"<details{' open' if span['id'] in opened else ''}><summary>{_summary(span, total)}</summary>"
                 f'<div style="margin-left:1.6em">{_payload(span) if payloads else ""}')
        size += len(piece) + 16
        if max_chars is not None and size > max_chars - 300:
            break
        out.append(piece)
        depth_stack.append(depth)
        shown += 1
    out.extend("</div></details>" for _ in depth_stack)
    omitted = len(spans) - shown + int((bundle.get("limits") or {}).get("spans_omitted") or 0)
    notes = []
    if omitted:
        notes.append(f"{omitted} more span(s) not shown here: open the trace in the MLflow UI (workbench mlflow)")
    if not payloads or (bundle.get("limits") or {}).get("payloads_omitted"):
        notes.append("inputs and outputs left out to keep the notebook small")
    if notes:
        out.append(f"<div><i>{escape('; '.join(notes))}</i></div>")
    out.append("</div>")
    return "".join(out)


def render_text(bundle: dict[str, Any]) -> str:
    """The tree as indented plain text (terminals, text/plain)."""
    total = float(bundle.get("duration_ms") or 0.0)
    lines = [f"trace {bundle.get('name')} {bundle.get('trace_id')} {format_ms(bundle.get('duration_ms'))}"]
    for span in bundle.get("spans") or []:
        mark = _MARK.get(span.get("status", "OK"), "?")
        line = (f"{'  ' * (int(span.get('depth') or 0) + 1)}{mark} [{span.get('kind')}] {span.get('name')} "
                f"{format_ms(span.get('duration_ms'))} "
                f"{_bar(span.get('start_ms') or 0.0, span.get('duration_ms'), total)}")
        usage = _usage(span)
        if usage:
            line += f" {usage}"
        if span.get("error"):
            line += f" {span['error'].get('type')}: {_display(span['error'].get('message'))}"
        lines.append(line)
    return "\n".join(lines)
