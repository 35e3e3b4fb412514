"""Getting JSON or code out of a model's answer: models wrap both in fences and sentences."""

from __future__ import annotations

import json
import re
from typing import Any

from workbench.errors import WorkbenchError

__all__ = ["extract_json", "strip_fence"]

# ```lang\n ... \n``` (or ~~~), the first one in the answer
_FENCE = re.compile(r"(?P<mark>`{3,}|~{3,})[ \t]*(?P<lang>[\w+#.\-]*)[^\n]*\n(?P<body>.*?)\n?[ \t]*(?P=mark)",
                    re.DOTALL)


def strip_fence(text: str) -> tuple[str, str]:
    """(code, language): the first fenced block when there is one, else the whole answer."""
    match = _FENCE.search(text)
    if match is None:
        return text.strip("\n"), ""
    return match.group("body").rstrip(), match.group("lang").lower()


def extract_json(text: str, model: str = "the model") -> Any:
    """The JSON value in an answer: the whole answer, a fenced block, or the first JSON object/array in it."""
    candidates = [text.strip()]
    match = _FENCE.search(text)
    if match is not None:
        candidates.append(match.group("body").strip())
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            pass
    decoder = json.JSONDecoder()
    for found in re.finditer(r"[\[{]", text):  # "Sure! Here it is: {...}"
        try:
            value, _ = decoder.raw_decode(text, found.start())
        except ValueError:
            continue
        return value
    snippet = " ".join(text.split())[:60]
    raise WorkbenchError(
        f"-f json: the answer from {model} holds no JSON (it starts {snippet!r}); ask for JSON only in the prompt "
        "or use -f text; the whole answer is in _llm.text"
    )
