"""`fake/...`: a deterministic provider for tests, demos and lessons about outages and latency.

    fake/echo                      replies with the last user message
    fake/fail[?status=503]         always fails like an unavailable provider (429, 401, 400, 408 also work)
    fake/flaky?p=0.3&seed=1        fails with probability p, drawn from a seeded sequence per model string
    fake/slow?ms=200               echoes after a delay
    fake/script                    replies from a queue filled by enqueue([...]) (an Exception entry is raised)
    fake/cut?after=3               streams `after` words of the echo, then breaks the connection
    fake/ratelimit?rpm=600[&burst=10]  echoes within a budget of `rpm` calls a minute (a token bucket holding
                                   `burst`, default one second's worth); past it, 429 with Retry-After

Token counts are whitespace tokens; prices are 1 USD per million input and 2 per million output tokens,
so cost tracking shows. Registered with litellm as the custom provider `fake`.
"""

from __future__ import annotations

import asyncio
import collections
import random
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qsl

from workbench.providers import fake_ratelimit

__all__ = ["make_provider", "enqueue", "clear_queue", "injected_failures", "reset", "MODELS", "DESCRIPTIONS",
           "count_tokens"]

# model -> how to call it and what it does (`%llm models` lists these; the module docstring says more)
DESCRIPTIONS = {
    "echo": ("fake/echo", "replies with your last message"),
    "fail": ("fake/fail[?status=503]", "always fails like a provider that is down"),
    "flaky": ("fake/flaky?p=0.3&seed=1", "fails with probability p"),
    "slow": ("fake/slow?ms=200", "echoes after a delay"),
    "script": ("fake/script", "replies from a queue you fill with workbench.providers.fake.enqueue([...])"),
    "cut": ("fake/cut?after=3", "streams a few words, then drops the connection"),
    "ratelimit": ("fake/ratelimit?rpm=600", "echoes within a rate limit, then answers 429 with Retry-After"),
}
MODELS = tuple(DESCRIPTIONS)
INPUT_USD_PER_1M = 1.0
OUTPUT_USD_PER_1M = 2.0

_lock = threading.Lock()
_queue: collections.deque[Any] = collections.deque()
_rngs: dict[str, random.Random] = {}
_injected: collections.Counter[str] = collections.Counter()


def enqueue(replies: list[Any] | tuple[Any, ...] | str) -> None:
    """Queue replies for `fake/script`, answered in order. An Exception instance is raised instead."""
    items = [replies] if isinstance(replies, str | BaseException) else list(replies)
    with _lock:
        _queue.extend(items)


def clear_queue() -> None:
    with _lock:
        _queue.clear()


def injected_failures(model: str | None = None) -> int:
    """How many failures the fake provider injected (for one model string, or all)."""
    with _lock:
        if model is None:
            return sum(_injected.values())
        return _injected[model.removeprefix("fake/")]


def reset() -> None:
    """Forget queues, seeded sequences and failure counts (tests call this)."""
    with _lock:
        _queue.clear()
        _rngs.clear()
        _injected.clear()
    fake_ratelimit.reset_buckets()


def count_tokens(text: str) -> int:
    return len(text.split())


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def _parse(model: str) -> tuple[str, dict[str, str]]:
    name, _, query = model.partition("?")
    return name, dict(parse_qsl(query, keep_blank_values=True))


def _number(params: dict[str, str], key: str, default: float, model: str) -> float:
    raw = params.get(key)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise _error(400, f"fake/{model}: {key}={raw!r} is not a number, e.g. fake/flaky?p=0.3&seed=1", model) from None


def _error(status: int, message: str, model: str) -> Exception:
    import litellm

    kinds = {
        400: litellm.BadRequestError,
        401: litellm.AuthenticationError,
        408: litellm.Timeout,
        429: litellm.RateLimitError,
        500: litellm.InternalServerError,
        503: litellm.ServiceUnavailableError,
    }
    kind = kinds.get(status, litellm.ServiceUnavailableError)
    return kind(message=message, llm_provider="fake", model=f"fake/{model}")


class _Plan:
    """What one call to a fake model will do: its reply, a delay, or a failure."""

    def __init__(self, model: str, messages: list[dict[str, Any]]) -> None:
        self.model = model
        name, params = _parse(model)
        if name not in MODELS:
            known = ", ".join(f"fake/{m}" for m in MODELS)
            raise _error(400, f"unknown fake model 'fake/{name}': use one of {known}", model)
        users = [m for m in messages if m.get("role") == "user"]
        echo = _text_of(users[-1]["content"]) if users else _text_of(messages[-1].get("content")) if messages else ""
        self.prompt_tokens = sum(count_tokens(_text_of(m.get("content"))) for m in messages)
        self.delay_s = 0.0
        self.failure: BaseException | None = None
        self.cut_after: int | None = None
        self.reply = echo
        if name == "fail":
            status = int(_number(params, "status", 503, model))
            self.failure = _error(status, f"fake/{model} is unavailable (simulated outage, status {status})", model)
        elif name == "flaky":
            p = _number(params, "p", 0.5, model)
            if not 0 <= p <= 1:
                raise _error(400, f"fake/{model}: p={p} must be between 0 and 1", model)
            seed = int(_number(params, "seed", 0, model))
            with _lock:
                rng = _rngs.setdefault(model, random.Random(seed))  # noqa: S311 - a test double's dice, not a secret
                failed = rng.random() < p
                if failed:
                    _injected[model] += 1
            if failed:
                self.failure = _error(503, f"fake/{model} failed (simulated, p={p})", model)
        elif name == "slow":
            self.delay_s = _number(params, "ms", 200, model) / 1000.0
        elif name == "script":
            with _lock:
                if not _queue:
                    raise _error(400, "fake/script has no queued reply: call "
                                      "workbench.providers.fake.enqueue([...]) first", model)
                item = _queue.popleft()
            if isinstance(item, BaseException):
                self.failure = item
            else:
                self.reply = str(item)
        elif name == "cut":
            self.cut_after = int(_number(params, "after", 3, model))
        elif name == "ratelimit":
            self.failure = fake_ratelimit.admit(model, _number(params, "rpm", 60, model), params.get("burst"), echo)

    @property
    def completion_tokens(self) -> int:
        return count_tokens(self.reply)

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }

    def chunks(self) -> list[str]:
        words = self.reply.split(" ")
        return [w if i == len(words) - 1 else w + " " for i, w in enumerate(words)]


def _fill(model_response: Any, plan: _Plan) -> Any:
    from litellm.types.utils import Usage

    model_response.choices[0].message.content = plan.reply
    model_response.choices[0].finish_reason = "stop"
    model_response.model = f"fake/{plan.model}"
    model_response.usage = Usage(**plan.usage())
    return model_response


def _chunk(text: str, *, last: bool = False, usage: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "text": text,
        "tool_use": None,
        "is_finished": last,
        "finish_reason": "stop" if last else "",
        "usage": usage,
        "index": 0,
    }


def _stream_steps(plan: _Plan) -> Iterator[dict[str, Any]]:
    pieces = plan.chunks()
    for i, piece in enumerate(pieces):
        if plan.cut_after is not None and i >= plan.cut_after:
            raise _error(503, f"fake/{plan.model}: connection reset after {i} chunks (simulated)", plan.model)
        yield _chunk(piece)
    yield _chunk("", last=True, usage=plan.usage())


def _custom_llm_base() -> type:
    from litellm import CustomLLM

    return CustomLLM


def make_provider() -> Any:
    """Build the provider instance (litellm is imported only now, on first use)."""

    class FakeProvider(_custom_llm_base()):  # type: ignore[misc]
        def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
            plan = _Plan(model, messages)
            if plan.delay_s:
                time.sleep(plan.delay_s)
            if plan.failure is not None:
                raise plan.failure
            return _fill(kwargs["model_response"], plan)

        async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
            plan = _Plan(model, messages)
            if plan.delay_s:
                await asyncio.sleep(plan.delay_s)
            if plan.failure is not None:
                raise plan.failure
            return _fill(kwargs["model_response"], plan)

        def streaming(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Iterator[Any]:
            plan = _Plan(model, messages)
            if plan.delay_s:
                time.sleep(plan.delay_s)
            if plan.failure is not None:
                raise plan.failure
            return _stream_steps(plan)

        async def astreaming(self, model: str, messages: list, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            plan = _Plan(model, messages)
            if plan.delay_s:
                await asyncio.sleep(plan.delay_s)
            if plan.failure is not None:
                raise plan.failure
            for step in _stream_steps(plan):
                yield step

    return FakeProvider()
