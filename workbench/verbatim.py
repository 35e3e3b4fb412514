"""HTML that notebooks show as written: no maths typesetting over answers, footers, errors, tables, traces.

JupyterLab typesets every text/html and Markdown output with MathJax 3, and nbconvert's HTML export (and the
classic Notebook) with MathJax 2, both with `$...$` as inline maths: "The basic plan costs $5 a month and the pro
plan $10 a month." loses its dollars and runs the words between them together in italics. Escaping `$` as
`&#36;` does not help: MathJax reads the text nodes, after the browser has decoded entities. What both skip is
an element carrying their ignore class: `mathjax_ignore` (MathJax 3: JupyterLab 4, Notebook 7) and
`tex2jax_ignore` (MathJax 2: nbconvert, Notebook 6). JupyterLab's sanitizer keeps `class`, so the mark also
holds for untrusted (reopened) notebooks. A user who wants maths asks for it: `%%llm -f math`.
"""

from __future__ import annotations

__all__ = ["NO_MATH", "verbatim"]

NO_MATH = "mathjax_ignore tex2jax_ignore"


def verbatim(body: str, tag: str = "div") -> str:
    """`body` (HTML, already escaped where it holds text) inside an element MathJax leaves alone."""
    return f'<{tag} class="{NO_MATH}">{body}</{tag}>'
