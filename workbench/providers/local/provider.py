"""`local/...`: causal LMs run in-process with transformers, registered with litellm as the custom provider `local`.

    local/smollm2                          the bundled SmolLM2-135M-Instruct (offline; see weights.py)
    local/<org>/<name>, local/<folder>     any other causal LM
    local/<base>+adapter:<name>[@<ver>]    a fine-tuned adapter on its base (see adapters.py)

Parameters: temperature (0 or absent: greedy), top_p, max_tokens (default 256), stop, seed. Usage is counted with
the model's tokenizer; the price is 0. Models load on first use and stay loaded for the process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

from workbench.errors import WorkbenchError
from workbench.providers.local import decoder as local_decoder
from workbench.providers.local import generate as local_generate
from workbench.providers.local import logprobs
from workbench.providers.local.adapters import model_for
from workbench.providers.local.generate import Generation, GenerationSettings

__all__ = ["make_provider"]

_END = object()


_error_classes: dict[type, type] = {}


def _bad_request(model: str, exc: WorkbenchError) -> Exception:
    """`exc` as an error that is both litellm's BadRequestError and the same WorkbenchError class.

    litellm turns anything else a custom provider raises into a retryable connection error, and a bad model name or
    parameter is the caller's to fix at once. As a WorkbenchError it leaves the gateway unchanged: one line that names
    the bad value and the fix (litellm would otherwise prefix "litellm.BadRequestError: ").
    """
    import litellm

    kind = type(exc)
    if kind not in _error_classes:
        _error_classes[kind] = type(kind.__name__, (litellm.BadRequestError, kind), {
            "__str__": lambda self: self.plain_message,
            "__module__": kind.__module__,
        })
    error = _error_classes[kind](message=str(exc), llm_provider="local", model=f"local/{model}")
    error.plain_message = str(exc)
    return error


def _prepare(model: str, kwargs: dict[str, Any]) -> tuple[Any, GenerationSettings]:
    try:
        settings = GenerationSettings.from_params(dict(kwargs.get("optional_params") or {}))
        local_decoder.check_settings()
        return model_for(model), settings
    except WorkbenchError as exc:
        raise _bad_request(model, exc) from exc


def _fill(model_response: Any, model: str, result: Generation) -> Any:
    from litellm.types.utils import Usage

    model_response.choices[0].message.content = result.text
    model_response.choices[0].finish_reason = result.finish_reason
    model_response.model = f"local/{model}"
    model_response.usage = Usage(**result.usage())
    return model_response


def _chunk(text: str, *, result: Generation | None = None) -> dict[str, Any]:
    return {
        "text": text,
        "tool_use": None,
        "is_finished": result is not None,
        "finish_reason": result.finish_reason if result is not None else "",
        "usage": result.usage() if result is not None else None,
        "index": 0,
    }


def _chunks(text_stream: local_generate.TextStream) -> Iterator[dict[str, Any]]:
    try:
        for piece in text_stream:
            yield _chunk(piece)
    finally:
        text_stream.close()  # a reader that stops early stops the generation too
    if text_stream.result is None:  # the stream ended without its summary: a bug in generate, not the caller's
        raise RuntimeError("local generation ended without a result")
    yield _chunk("", result=text_stream.result)


def _custom_llm_base() -> type:
    from litellm import CustomLLM

    return CustomLLM


def make_provider() -> Any:
    """Build the provider instance (litellm is imported only now; torch only when a model loads)."""

    class LocalProvider(_custom_llm_base()):  # type: ignore[misc]
        def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
            loaded, settings = _prepare(model, kwargs)
            try:
                top = logprobs.wanted(dict(kwargs.get("optional_params") or {}))
            except WorkbenchError as exc:
                raise _bad_request(model, exc) from exc
            if top is not None:  # logprobs=True: the same generation, with the token log-probabilities
                result, tokens = logprobs.generate_with_logprobs(loaded, messages, settings, top)
                response = _fill(kwargs["model_response"], model, result)
                response.choices[0].logprobs = tokens
                return response
            return _fill(kwargs["model_response"], model, local_generate.generate(loaded, messages, settings))

        async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
            # generation is CPU-bound: run it on a worker thread so the event loop stays free
            return await asyncio.to_thread(self.completion, model, messages, *args, **kwargs)

        def streaming(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Iterator[Any]:
            # Load and start here, not lazily in the iterator: a bad model fails before any chunk (a fallback can
            # take over).
            loaded, settings = _prepare(model, kwargs)
            return _chunks(local_generate.stream(loaded, messages, settings))

        async def astreaming(self, model: str, messages: list, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            chunks = await asyncio.to_thread(self.streaming, model, messages, *args, **kwargs)
            while (chunk := await asyncio.to_thread(next, chunks, _END)) is not _END:
                yield chunk

    return LocalProvider()
