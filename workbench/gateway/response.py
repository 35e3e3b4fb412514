"""The records a call returns: Response and Attempt (one failed try)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.errors import Attempt  # defined with the errors that carry it (ProviderError.attempts)

__all__ = ["Response", "Attempt"]


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

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
