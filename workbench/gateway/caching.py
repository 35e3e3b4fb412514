"""What the gateway caches, and how a cache failure is handled: only a whole text answer, and never at the price
of the answer itself (a cache that cannot be written or read is one warning, then a miss)."""

from __future__ import annotations

import warnings
from typing import Any

from workbench.config import settings
from workbench.errors import StoreError, WorkbenchWarning
from workbench.gateway import stores
from workbench.gateway.calls import PreparedCall
from workbench.gateway.response import Response
from workbench.secrets import redact

__all__ = ["CacheWarning", "cacheable", "store_answer", "warn_cache_once", "tool_calls_of"]


class CacheWarning(WorkbenchWarning):
    """The answer cache failed (full disk, damaged file, text sqlite cannot store): a read is a miss; an answer
    is returned and
    billed all the same; only the next identical call misses."""



# Finish reasons of an answer that is not a whole text answer to the question: never cached. "length" is cached:
# it is the whole answer to the max_tokens asked for, and max_tokens is part of the key.
_NOT_AN_ANSWER = {"tool_calls", "function_call", "content_filter"}
_cache_warned: set[str] = set()


def warn_cache_once(what: str, exc: BaseException) -> None:
    """One warning per kind of cache failure and process: a full disk must not warn on every call."""
    kind = f"{what}:{type(exc).__name__}"
    if kind in _cache_warned:
        return
    _cache_warned.add(kind)
    doing = "reading the answer cache failed; answering without it" if what == "read" else \
        "the answer was returned and billed but could not be cached"
    warnings.warn(f"{doing} ({type(exc).__name__}: {redact(str(exc))[:200]}); later cache failures of this "
                  f"kind are not reported; check the disk, or workbench.clear_cache()", CacheWarning,
                  stacklevel=4)


def cacheable(response: Response) -> bool:
    """Only a whole text answer is cached: not an empty one, not tool calls, not one cut by a filter."""
    return bool(response.text) and not response.tool_calls and response.finish_reason not in _NOT_AN_ANSWER


def store_answer(call: PreparedCall, response: Response, position: int) -> None:
    # Only the primary model's answers are cached under this call's key: a fallback's answer must
    # not stand in for the primary once it is back.
    if not call.use_cache or not call.key or position != 0 or not cacheable(response):
        return
    try:
        stores.cache().set(
            call.key,
            {
                "text": response.text, "model_used": response.model_used, "prompt_tokens": response.prompt_tokens,
                "completion_tokens": response.completion_tokens, "finish_reason": response.finish_reason,
                "logprobs": response.logprobs,  # asked for (logprobs=True is in the key): part of the answer
            },
            ttl_s=settings().cache_ttl_s,
            model=response.model_used,
        )
    except (StoreError, ValueError) as exc:  # ValueError: UnicodeEncodeError of a lone surrogate in the answer
        warn_cache_once("write", exc)


def tool_calls_of(message: Any) -> list[dict[str, Any]]:
    """The tool (or legacy function) calls of an answer's message, as plain dicts in OpenAI's shape."""
    found = []
    for call in getattr(message, "tool_calls", None) or []:
        found.append(call.model_dump() if hasattr(call, "model_dump") else dict(call))
    function_call = getattr(message, "function_call", None)
    if function_call:
        dumped = function_call.model_dump() if hasattr(function_call, "model_dump") else dict(function_call)
        found.append({"type": "function", "function": dumped})
    return found
