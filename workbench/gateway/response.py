"""The records a call returns: Response and Attempt (one failed try)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.errors import Attempt  # defined with the errors that carry it (ProviderError.attempts)

__all__ = ["Response", "Attempt", "plain_logprobs"]


@dataclass
class Response:
    """What a call returns. `model` is what was asked for; `model_used` what answered."""

    text: str
    model: str
    model_used: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None  # None: the model's price is unknown (see workbench.set_price)
    latency_ms: float = 0.0
    cache_hit: bool = False
    attempts: list[Attempt] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    trace_id: str | None = None
    created_at: float = field(default_factory=time.time)
    finish_reason: str | None = None
    fell_back: bool = False  # a fallback model answered after the asked one failed
    messages: list[dict[str, Any]] = field(default_factory=list, repr=False)  # the messages sent
    params: dict[str, Any] = field(default_factory=dict, repr=False)  # the answer-changing params sent
    # the tool calls the model asked for (OpenAI's shape: id, type, function {name, arguments}); text is then
    # often empty, and such an answer is never cached
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    logprobs: list[dict[str, Any]] | None = field(default=None, repr=False)  # with logprobs=True: per token

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plain_logprobs(choice: Any) -> list[dict[str, Any]] | None:
    """A choice's token logprobs as plain dicts (token, logprob, top_logprobs), whatever litellm wrapped them in."""
    found = getattr(choice, "logprobs", None)
    if found is None:
        return None
    content = found.get("content") if isinstance(found, dict) else getattr(found, "content", None)
    if not content:
        return None

    def plain(item: Any) -> dict[str, Any]:
        return item if isinstance(item, dict) else (item.model_dump() if hasattr(item, "model_dump") else dict(item))

    tokens = []
    for item in content:
        entry = plain(item)
        tokens.append({"token": entry.get("token"), "logprob": entry.get("logprob"),
                       "top_logprobs": [{"token": plain(t).get("token"), "logprob": plain(t).get("logprob")}
                                        for t in entry.get("top_logprobs") or []]})
    return tokens
