"""complete / acomplete / stream: one call through cache, budget, litellm, retries and fallbacks.

Order matters: the cache is asked first (a hit is free and never refused), then the budget, then the
models in turn. Each model gets `max_retries` retries on rate limits, timeouts and server errors; bad
requests, auth errors and missing keys go straight to the next fallback. Every failed try is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import warnings
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from typing import Any, Literal, TypeVar, overload

from workbench.config import settings
from workbench.errors import (
    BudgetExceeded,
    MissingKeyError,
    ProviderError,
    StoreError,
    StreamInterrupted,
    WorkbenchError,
)
from workbench.gateway import budget, caching, first_call, hooks, models, prices, ratelimit, stores, team
from workbench.gateway.calls import PreparedCall, prepare
from workbench.gateway.hints import fallback_hint
from workbench.gateway.ledger import LedgerRow
from workbench.gateway.response import Attempt, Response, plain_logprobs
from workbench.gateway.retry import backoff_s, classify
from workbench.providers.registry import CUSTOM_PROVIDERS, quiet_litellm
from workbench.secrets import redact

__all__ = ["complete", "acomplete", "stream", "Stream", "quiet_litellm", "CacheWarning"]

CacheWarning = caching.CacheWarning  # where a user looks for the gateway's warnings
T = TypeVar("T")


def _check_key(model: str) -> None:
    if model.split("/", 1)[0] in CUSTOM_PROVIDERS:
        return
    try:
        found = quiet_litellm().validate_environment(model)
    except Exception:  # litellm cannot tell: let the provider answer for itself
        return
    missing = tuple(found.get("missing_keys") or ())
    if missing:
        raise MissingKeyError(
            f"{model} needs {', '.join(missing)}: set it in the environment or a .env file "
            f"(or add a fallback such as {fallback_hint()})",
            variables=missing,
        )


def _invoke(target: str | models.Route, call: PreparedCall, *, stream: bool) -> tuple[Any, str]:
    """One litellm call; returns (litellm result, model string that serves it)."""
    litellm = quiet_litellm()
    kwargs = dict(call.params, messages=call.messages, timeout=call.timeout)
    if stream:
        kwargs["stream"] = True
    if isinstance(target, models.Route):
        result = target.router().completion(model=target.name, **kwargs)
        hidden = getattr(result, "_hidden_params", None) or {}
        return result, hidden.get("model_id") or hidden.get("litellm_model_name") or target.name
    if team.is_team(target):  # the team's MLflow AI Gateway: its refusals become our one-line errors
        try:
            return litellm.completion(**team.litellm_kwargs(target), **kwargs), target
        except Exception as exc:
            converted = team.convert(exc, target)
            if converted is exc:
                raise
            raise converted from None
    _check_key(target)
    price = prices.own_price(target)
    if price is not None:  # tell litellm the price, or it searches its price list for every call
        kwargs.setdefault("input_cost_per_token", price.input_per_1m / 1_000_000)
        kwargs.setdefault("output_cost_per_token", price.output_per_1m / 1_000_000)
    return litellm.completion(model=target, **kwargs), target


def _run_chain(call: PreparedCall, attempt: Callable[[str | models.Route], T]) -> tuple[int, T, list[Attempt]]:
    """Try each model of the chain, with retries, until `attempt` returns. Raises ProviderError."""
    config = settings()
    failures: list[Attempt] = []
    last_error: Exception | None = None
    for position, (name, target) in enumerate(call.chain):
        for retry in range(config.max_retries + 1):
            started, clock = time.time(), time.perf_counter()
            try:
                return position, attempt(target), failures
            except Exception as exc:  # KeyboardInterrupt passes: Ctrl-C stops the whole call
                kind, last_error = classify(exc), exc
            failures.append(
                Attempt(name, kind.error_type, kind.message, (time.perf_counter() - clock) * 1000, kind.retryable,
                        started)
            )
            hint = None
            if kind.retryable and ratelimit.is_rate_limit(last_error):
                if ratelimit.deferred():  # the caller paces itself: no retry here, no fallback
                    raise ratelimit.handed_back(name, failures, last_error)
                hint = ratelimit.retry_after_s(last_error)
            if not kind.retryable or retry == config.max_retries:
                break
            time.sleep(max(backoff_s(retry, config.retry_backoff_s), hint or 0.0))  # Retry-After, when given
    raise _all_failed(call, failures, last_error)


def _all_failed(call: PreparedCall, failures: list[Attempt], last_error: Exception | None) -> WorkbenchError:
    last = failures[-1]
    if len(call.chain) == 1 and isinstance(last_error, WorkbenchError):
        # our own error (a missing key, a bad local model) already says what to fix: keep it as it is
        if isinstance(last_error, ProviderError) and not last_error.attempts:
            last_error.attempts = failures
        return last_error
    tried = ", ".join(dict.fromkeys(a.model for a in failures))
    hint = f"add a fallback, e.g. {fallback_hint()}" if len(call.chain) == 1 else "check the providers above"
    return ProviderError(
        f"{call.model} failed after {len(failures)} attempt(s) on {tried}; "
        f"last error {last.error_type}: {last.message}; {hint}",
        attempts=failures,
    )


def _finish(call: PreparedCall, record: hooks.CallRecord, response: Response | None, status: str,
            reservation: int | None = None, counted: tuple[int, int, float | None] | None = None) -> None:
    """Ledger row and observers, for every outcome. `counted`: (prompt tokens, completion tokens, cost) of a call
    stopped before it answered (what was counted so far, or the estimate); the row settles `reservation`."""
    first_call.ready()
    record.ended_at = time.time()
    record.response = response
    trace_id = hooks.notify(record) if hooks.has_observers() else None
    if response is not None:
        response.trace_id = trace_id or response.trace_id
    prompt_tokens, completion_tokens, cost = counted or (0, 0, 0.0)
    if response is not None:
        prompt_tokens, completion_tokens, cost = response.prompt_tokens, response.completion_tokens, response.cost_usd
    stores.ledger().record(
        LedgerRow(
            model=call.model,
            model_used=response.model_used if response else None,
            status=status,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=cost,
            latency_ms=response.latency_ms if response else (record.ended_at - record.started_at) * 1000,
            cache_hit=bool(response and response.cache_hit),
            failed_attempts=len(record.attempts),
            tags=call.tags,
            trace_id=trace_id,
            reservation=reservation,
        )
    )


def _new_record(call: PreparedCall, *, stream: bool) -> hooks.CallRecord:
    now = time.time()
    return hooks.CallRecord(call.model, call.messages, call.recorded_params, call.tags, now, now, stream=stream)


class _Flow:
    """One call's way through the gateway, shared by complete() and Stream: cache, then budget, then the chain of
    models, then cache store, ledger row and observers. The one place a Response is built."""

    def __init__(self, call: PreparedCall, *, stream: bool) -> None:
        self.call = call
        self.clock = time.perf_counter()
        self.record = _new_record(call, stream=stream)
        self.failures: list[Attempt] = []
        self.position = 0
        self.reservation: int | None = None  # the budget reservation the ledger row settles
        self.estimate: tuple[int, int, float] = (0, 0, 0.0)  # prompt tokens, completion tokens, USD
        self.finished = False

    def cached(self) -> Response | None:
        """The cached answer (free, never refused), or None; the caller finishes it with done()."""
        if not self.call.use_cache or not self.call.key:  # no key: what cannot be keyed is not cached
            return None
        try:
            hit = stores.cache().get(self.call.key)
        except StoreError as exc:  # a disposable store: a damaged or locked cache is a miss
            caching.warn_cache_once("read", exc)
            return None
        if hit is None:
            return None
        response = self.response(hit["text"], hit["model_used"], hit["prompt_tokens"], hit["completion_tokens"],
                                 hit.get("finish_reason"), cache_hit=True)
        response.logprobs = hit.get("logprobs")
        return response

    def send(self, attempt: Callable[[str | models.Route], T]) -> T:
        """Check the budget, then try the chain; a refusal or a failure is finished (ledger, observers) and raised."""
        try:
            self._reserve()
            self.position, value, self.failures = _run_chain(self.call, attempt)
        except WorkbenchError as exc:
            self.fail(exc, "refused" if isinstance(exc, BudgetExceeded) else "error",
                      attempts=list(getattr(exc, "attempts", [])))
            raise
        except KeyboardInterrupt as exc:  # Ctrl-C while waiting: the provider may bill it, so the row counts it
            counted = self.estimate if self.reservation is not None else budget.estimate(self.call, history=False)
            self.stopped(exc, counted)
            raise
        self.record.attempts = self.failures
        return value

    def _reserve(self) -> None:
        """Reserve this call's estimated cost under every budget that applies, or raise BudgetExceeded."""
        self.reservation, self.estimate = budget.reserve(self.call)

    def response(self, text: str, model_used: str, prompt_tokens: int, completion_tokens: int,
                 finish_reason: str | None, *, cache_hit: bool = False) -> Response:
        call = self.call
        return Response(
            text=text,
            model=call.model,
            model_used=model_used,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=0.0 if cache_hit else prices.cost_of(model_used, prompt_tokens, completion_tokens),
            latency_ms=(time.perf_counter() - self.clock) * 1000,
            attempts=[] if cache_hit else list(self.failures),
            tags=dict(call.tags),
            finish_reason=finish_reason,
            fell_back=not cache_hit and self.position > 0,
            cache_hit=cache_hit,
            messages=call.messages,
            params=call.recorded_params,
        )

    def answered(self, response: Response) -> Response:
        """A fresh answer: cached (the primary model's only, and only a whole answer), then finished."""
        caching.store_answer(self.call, response, self.position)
        return self.done(response)

    def done(self, response: Response) -> Response:
        self.finished = True
        _finish(self.call, self.record, response, "ok", self.reservation)
        return response

    def fail(self, error: BaseException, status: str, *, attempts: list[Attempt] | None = None) -> None:
        self.finished = True
        self.record.error = error
        if attempts is not None:
            self.record.attempts = attempts
        _finish(self.call, self.record, None, status, self.reservation)

    def stopped(self, error: BaseException, counted: tuple[int, int, float | None]) -> None:
        """The reader or Ctrl-C stopped the call before its answer was whole: a "stopped" row with what was
        counted (a stream's text so far; otherwise the estimate), settling the reservation."""
        if self.finished:
            return
        self.finished = True
        self.record.error = error
        self.record.attempts = self.failures
        _finish(self.call, self.record, None, "stopped", self.reservation, counted)


# What a call accepts: a prompt, or chat messages ({"role": ..., "content": ...}); checked by prepare().
Prompt = str | Sequence[Mapping[str, object]]
Fallbacks = str | Sequence[str] | None


@overload
def complete(prompt_or_messages: Prompt, model: str | None = None, *, system: str | None = None,
             fallbacks: Fallbacks = (), tags: dict[str, str] | None = None, cache: bool = True,
             stream: Literal[False] = False, timeout: float | None = None, **params: object) -> Response: ...


@overload
def complete(prompt_or_messages: Prompt, model: str | None = None, *, system: str | None = None,
             fallbacks: Fallbacks = (), tags: dict[str, str] | None = None, cache: bool = True,
             stream: Literal[True], timeout: float | None = None, **params: object) -> Stream: ...


def complete(
    prompt_or_messages: Prompt,
    model: str | None = None,
    *,
    system: str | None = None,
    fallbacks: Fallbacks = (),
    tags: dict[str, str] | None = None,
    cache: bool = True,
    stream: bool = False,
    timeout: float | None = None,
    **params: object,
) -> Response | Stream:
    """Call a model through the gateway and return a Response (with stream=True, a Stream).

    `params` go to litellm (temperature, max_tokens, seed, stop, tools...) and are part of the cache key.
    """
    call = prepare(prompt_or_messages, model, system=system, fallbacks=fallbacks, tags=tags, cache=cache,
                   timeout=timeout, params=params)
    if stream:
        return Stream(call)
    flow = _Flow(call, stream=False)
    cached = flow.cached()
    if cached is not None:
        return flow.done(cached)
    result, model_used = flow.send(lambda target: _invoke(target, call, stream=False))
    choice = result.choices[0]
    usage = getattr(result, "usage", None)
    response = flow.response(choice.message.content or "", model_used, int(getattr(usage, "prompt_tokens", 0) or 0),
                             int(getattr(usage, "completion_tokens", 0) or 0), getattr(choice, "finish_reason", None))
    response.tool_calls = caching.tool_calls_of(choice.message)
    response.logprobs = plain_logprobs(choice)
    return flow.answered(response)


async def acomplete(prompt_or_messages: Prompt, model: str | None = None, *, system: str | None = None,
                    fallbacks: Fallbacks = (), tags: dict[str, str] | None = None, cache: bool = True,
                    timeout: float | None = None, **params: object) -> Response:
    """complete() without blocking the event loop (it runs on a worker thread)."""
    call = functools.partial(complete, prompt_or_messages, model, system=system, fallbacks=fallbacks, tags=tags,
                             cache=cache, stream=False, timeout=timeout, **params)
    return await asyncio.to_thread(call)


def stream(prompt_or_messages: Prompt, model: str | None = None, *, system: str | None = None,
           fallbacks: Fallbacks = (), tags: dict[str, str] | None = None, cache: bool = True,
           timeout: float | None = None, **params: object) -> Stream:
    """Iterate over text chunks as they arrive; afterwards `.response` holds the whole Response."""
    return complete(prompt_or_messages, model, system=system, fallbacks=fallbacks, tags=tags, cache=cache,
                    stream=True, timeout=timeout, **params)


class Stream:
    """Text chunks of one streamed call. An error before the first chunk falls back to the next model;
    a break after partial output raises StreamInterrupted and is never cached or counted as a success.
    A stream the reader stops (`break`, then the iterator is dropped; close(); Ctrl-C) writes a "stopped" row."""

    def __init__(self, call: PreparedCall) -> None:
        # The generator holds the body, never this object: `for c in stream(...): break` then drops the generator
        # at once (no reference cycle waiting for the garbage collector), and its GeneratorExit writes the row.
        self._body = _StreamBody(call)
        self._chunks = self._body.generate()

    @property
    def call(self) -> PreparedCall:
        return self._body.call

    @property
    def text(self) -> str:
        return self._body.text

    @property
    def response(self) -> Response | None:
        return self._body.response

    def __iter__(self) -> Iterator[str]:
        return self._chunks

    def __next__(self) -> str:
        return next(self._chunks)

    def close(self) -> None:
        """Stop reading: the call is recorded as stopped with the text so far."""
        self._chunks.close()

    def __repr__(self) -> str:
        state = "done" if self.response else "open"
        return f"<Stream {self.call.model} {state}: {redact(self.text[:40])!r}>"


class _StreamBody:
    """A stream's call and what it has produced so far; the generator's whole state."""

    def __init__(self, call: PreparedCall) -> None:
        self.call = call
        self.response: Response | None = None
        self.text = ""

    def _open(self, target: str | models.Route) -> tuple[Any, Any, str]:
        result, model_used = _invoke(target, self.call, stream=True)
        iterator = iter(result)
        first = next(iterator, None)  # an error here, before any text, counts as a failed attempt
        hidden = getattr(result, "_hidden_params", None) or {}
        return iterator, first, hidden.get("model_id") or model_used

    def generate(self) -> Generator[str, None, None]:
        flow = _Flow(self.call, stream=True)
        cached = flow.cached()
        if cached is not None:
            self.text = cached.text
            try:
                yield cached.text
            finally:  # a hit is free, but still a call: its row is written even when the reader stops here
                self.response = flow.done(cached)
            return
        iterator, first, model_used = flow.send(self._open)
        chunks = [] if first is None else [first]
        try:
            if first is not None:
                yield from self._texts(first)
            for chunk in iterator:
                chunks.append(chunk)
                yield from self._texts(chunk)
        except (GeneratorExit, KeyboardInterrupt) as exc:  # `break` (then close()) or Ctrl-C: stopped, not lost
            flow.stopped(exc if isinstance(exc, KeyboardInterrupt) else StreamInterrupted(
                f"{model_used}: the reader stopped the stream after {len(self.text)} characters",
                partial_text=self.text, attempts=flow.failures), self._counted(model_used))
            close = getattr(iterator, "close", None)
            if close is not None:  # release the provider's connection or generation thread
                with contextlib.suppress(Exception):
                    close()
            raise
        except Exception as exc:
            kind = classify(exc)
            error = StreamInterrupted(
                f"{model_used} stopped after {len(self.text)} characters: {kind.error_type}: {kind.message}; "
                "the partial answer is not cached; run the call again",
                partial_text=self.text,
                attempts=flow.failures,
            )
            flow.fail(error, "interrupted")
            raise error from None
        prompt_tokens, completion_tokens, finish, tool_calls = self._usage(chunks, model_used)
        response = flow.response(self.text, model_used, prompt_tokens, completion_tokens, finish)
        response.tool_calls = tool_calls
        self.response = flow.answered(response)

    def _counted(self, model_used: str) -> tuple[int, int, float | None]:
        """(prompt tokens, completion tokens, cost) of a stopped stream: estimated from characters (4 a token),
        never asked of a tokenizer on the way out of a Ctrl-C."""
        prompt = sum(len(str(m.get("content") or "")) for m in self.call.messages) // 4 + 1
        completion = (len(self.text) + 3) // 4
        return prompt, completion, prices.cost_of(model_used, prompt, completion)

    def _texts(self, chunk: Any) -> Iterator[str]:
        choices = getattr(chunk, "choices", None) or []
        piece = choices[0].delta.content if choices and getattr(choices[0], "delta", None) else None
        if piece:
            self.text += piece
            yield piece

    def _usage(self, chunks: list[Any], model_used: str) -> tuple[int, int, str | None, list[dict[str, Any]]]:
        """(prompt tokens, completion tokens, finish reason, tool calls) of the whole stream."""
        litellm = quiet_litellm()
        try:
            with warnings.catch_warnings():  # litellm's pydantic types warn on first use; not for a cell
                warnings.simplefilter("ignore")
                whole = litellm.stream_chunk_builder(chunks, messages=self.call.messages)
            usage = whole.usage
            choice = whole.choices[0]
            return (int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0), choice.finish_reason,
                    caching.tool_calls_of(choice.message))
        except Exception:  # usage is best effort for exotic providers: count it ourselves
            return (litellm.token_counter(model=model_used, messages=self.call.messages),
                    litellm.token_counter(model=model_used, text=self.text), None, [])

