"""Generation for `local/...` models: chat template, sampling settings, stop strings, streaming, real token counts.

Tokens come from decoder.py's choice where it serves the model (plain Llama models: SmolLM2): the CTranslate2 engine
for greedy calls, its torch decoder for sampled ones; else from transformers' `generate` (other architectures,
adapters switched on, WORKBENCH_LOCAL_BACKEND=transformers).

One lock serializes generation in the process: torch already spreads one generate over every core, so two at once
only contend, and torch's random generator is global, so a seeded call must not interleave with another sampling call.
Defaults differ from OpenAI's on purpose: without `temperature` the answer is greedy (deterministic and cacheable),
which is what a 135M model answers best with; `max_tokens` defaults to 256.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

from workbench.errors import ConfigError
from workbench.providers.local import decoder as local_decoder
from workbench.providers.local.weights import LoadedModel

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "Generation",
    "GenerationSettings",
    "TextStream",
    "chat_prompt",
    "generate",
    "generation_lock",
    "stream",
]

DEFAULT_MAX_TOKENS = 256
_LOCK = threading.Lock()
_ROLE_MAP = {"developer": "system", "tool": "user", "function": "user"}


def generation_lock() -> threading.Lock:
    """The lock every generation holds; adapters are loaded onto the shared base under it too."""
    return _LOCK


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float = 0.0  # 0: greedy
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> GenerationSettings:
        """From litellm's optional_params; other parameters (tools, n...) are ignored by a local model."""
        limit = params.get("max_tokens", params.get("max_completion_tokens"))
        if limit is None:
            limit = DEFAULT_MAX_TOKENS
        if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
            raise ConfigError(f"max_tokens={limit!r} must be a whole number > 0, e.g. max_tokens=64")
        temperature = params.get("temperature")
        temperature = 0.0 if temperature is None else temperature
        if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
            raise ConfigError(f"temperature={temperature!r} must be a number from 0 to 2 (0 is greedy)")
        top_p = params.get("top_p")
        if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, int | float) or not 0 < top_p <= 1):
            raise ConfigError(f"top_p={top_p!r} must be a number above 0 and at most 1, e.g. top_p=0.9")
        stop = params.get("stop") or ()
        stop = (stop,) if isinstance(stop, str) else tuple(stop)
        if not all(isinstance(s, str) for s in stop):
            raise ConfigError(f"stop={params.get('stop')!r} must be a string or a list of strings")
        seed = params.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ConfigError(f"seed={seed!r} must be a whole number, e.g. seed=0")
        return cls(int(limit), float(temperature), None if top_p is None else float(top_p),
                   tuple(s for s in stop if s), seed)

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0 or math.isclose(self.temperature, 0.0)

    def generate_kwargs(self) -> dict[str, Any]:
        # Sampling options only when sampling: transformers warns about temperature/top_p on greedy calls.
        if self.greedy:
            return {"max_new_tokens": self.max_new_tokens, "do_sample": False}
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "do_sample": True,
                                  "temperature": self.temperature, "top_k": None}
        kwargs["top_p"] = self.top_p if self.top_p is not None else 1.0
        return kwargs


@dataclass
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # stop | length

    def usage(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts: a local text model reads the text parts
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def chat_prompt(tokenizer: Any, messages: list[dict[str, Any]]) -> str:
    """The prompt text: the model's chat template, or plain turns for a base model that has none."""
    turns = [{"role": _ROLE_MAP.get(m.get("role", "user"), m.get("role", "user")),
              "content": _text_of(m.get("content"))} for m in messages]
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    return "\n\n".join(f"{t['role']}: {t['content']}" for t in turns) + "\n\nassistant:"


def _encode(loaded: LoadedModel, messages: list[dict[str, Any]]) -> Any:
    # The chat template already holds the special tokens (<|im_start|>...), so none are added again.
    return loaded.tokenizer(chat_prompt(loaded.tokenizer, messages), return_tensors="pt", add_special_tokens=False)


def _special_ids(loaded: LoadedModel) -> set[int]:
    ids = set(loaded.tokenizer.all_special_ids or [])
    eos = loaded.model.generation_config.eos_token_id
    ids.update(eos if isinstance(eos, list) else [] if eos is None else [eos])
    return ids


def _cut_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    return (text[: min(hits)], True) if hits else (text, False)


def _count(loaded: LoadedModel, text: str) -> int:
    return len(loaded.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0


def _stopping(loaded: LoadedModel, prompt_len: int, stops: tuple[str, ...], cancel: threading.Event | None) -> Any:
    """Stop generating once a stop string shows up in the tail of the answer, or when the reader went away."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    tail = max((len(s) for s in stops), default=0) + 2  # a stop string spans at most that many tokens

    class _Stop(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            done = cancel is not None and cancel.is_set()
            if not done and stops:
                start = max(prompt_len, input_ids.shape[1] - tail)
                recent = loaded.tokenizer.decode(input_ids[0, start:], skip_special_tokens=True)
                done = any(s in recent for s in stops)
            return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([_Stop()])


def _finish_reason(loaded: LoadedModel, new_ids: list[int], settings: GenerationSettings, cut: bool) -> str:
    if cut or (new_ids and new_ids[-1] in _special_ids(loaded)):
        return "stop"
    return "length" if len(new_ids) >= settings.max_new_tokens else "stop"


def _run_generate(loaded: LoadedModel, inputs: Any, settings: GenerationSettings, **extra: Any) -> Any:
    import torch

    if settings.seed is not None:
        torch.manual_seed(settings.seed)
    # An adapter on the shared base switches itself on here (and the plain base switches adapters off): the
    # caller holds the generation lock, so no other call can switch it in between.
    decoder = local_decoder.decoder_for(loaded, greedy=settings.greedy)
    if decoder is not None:  # the fast path; an adapter switched on (or another architecture) has none
        eos = loaded.model.generation_config.eos_token_id
        return local_decoder.generate_ids(
            decoder, inputs["input_ids"], max_new_tokens=settings.max_new_tokens,
            temperature=0.0 if settings.greedy else settings.temperature, top_p=settings.top_p,
            eos_ids=set(eos if isinstance(eos, list) else [] if eos is None else [eos]),
            stopping_criteria=extra.get("stopping_criteria"), streamer=extra.get("streamer"),
            output_logits=bool(extra.get("output_logits")))  # logprobs.py asks for logits (and the dict form)
    scope = loaded.extra.get("scope")
    with scope() if scope is not None else contextlib.nullcontext(), torch.inference_mode():
        return loaded.model.generate(**inputs, **settings.generate_kwargs(),
                                     pad_token_id=loaded.tokenizer.pad_token_id, **extra)


def generate(loaded: LoadedModel, messages: list[dict[str, Any]], settings: GenerationSettings) -> Generation:
    """One whole answer."""
    with _LOCK:  # tokenizers are not safe to share across threads either
        inputs = _encode(loaded, messages)
        prompt_len = int(inputs["input_ids"].shape[1])
        extra = {"stopping_criteria": _stopping(loaded, prompt_len, settings.stop, None)} if settings.stop else {}
        output = _run_generate(loaded, inputs, settings, **extra)
        new_ids = output[0, prompt_len:].tolist()
        text, cut = _cut_at_stop(loaded.tokenizer.decode(new_ids, skip_special_tokens=True), settings.stop)
        specials = _special_ids(loaded)
        tokens = _count(loaded, text) if cut else len([t for t in new_ids if t not in specials])
        return Generation(text, prompt_len, tokens, _finish_reason(loaded, new_ids, settings, cut))


class TextStream:
    """Text pieces as the model writes them (generate runs on a worker thread); `.result` once exhausted.

    Text that could be the start of a stop string is held back until it is known not to be one, so no piece of a
    stop string ever reaches the reader. Closing the stream early stops the generation at the next token.
    """

    def __init__(self, loaded: LoadedModel, messages: list[dict[str, Any]], settings: GenerationSettings) -> None:
        from transformers import TextIteratorStreamer

        self.loaded, self.settings = loaded, settings
        self.result: Generation | None = None
        self._cancel = threading.Event()
        self._output: dict[str, Any] = {}
        self._streamer = TextIteratorStreamer(loaded.tokenizer, skip_prompt=True, skip_special_tokens=True)
        self._thread = threading.Thread(target=self._work, args=(messages,), name="workbench-local-generate",
                                        daemon=True)
        self._thread.start()
        self._pieces = self._read()

    def _work(self, messages: list[dict[str, Any]]) -> None:
        try:
            with _LOCK:
                inputs = _encode(self.loaded, messages)
                self._output["prompt_len"] = int(inputs["input_ids"].shape[1])
                criteria = _stopping(self.loaded, self._output["prompt_len"], self.settings.stop, self._cancel)
                self._output["ids"] = _run_generate(self.loaded, inputs, self.settings, streamer=self._streamer,
                                                    stopping_criteria=criteria)
        except BaseException as exc:  # noqa: BLE001 - handed to the reader, who raises it
            self._output["error"] = exc
            self._streamer.end()  # unblocks the reader; it finds the error

    def __iter__(self) -> Iterator[str]:
        return self._pieces

    def __next__(self) -> str:
        return next(self._pieces)

    def close(self) -> None:
        self._pieces.close()

    def _read(self) -> Generator[str, None, None]:
        stops = self.settings.stop
        hold = max((len(s) for s in stops), default=1) - 1
        text, sent, cut = "", 0, False
        try:
            for piece in self._streamer:
                text += piece
                if stops:
                    text, cut = _cut_at_stop(text, stops)
                    ready = len(text) if cut else max(sent, len(text) - hold)
                else:
                    ready = len(text)
                if ready > sent:
                    yield text[sent:ready]
                    sent = ready
                if cut:
                    self._cancel.set()
                    break
            self._thread.join()
            if "error" in self._output:
                raise self._output["error"]
            if sent < len(text):
                yield text[sent:]
        finally:
            self._cancel.set()  # a reader that leaves early (break, Ctrl-C) stops the generation
        self._thread.join()
        self.result = self._summary(text, cut)

    def _summary(self, text: str, cut: bool) -> Generation:
        prompt_len = self._output["prompt_len"]
        new_ids = self._output["ids"][0, prompt_len:].tolist()
        with _LOCK:
            specials = _special_ids(self.loaded)
            tokens = _count(self.loaded, text) if cut else len([t for t in new_ids if t not in specials])
        return Generation(text, prompt_len, tokens, _finish_reason(self.loaded, new_ids, self.settings, cut))


def stream(loaded: LoadedModel, messages: list[dict[str, Any]], settings: GenerationSettings) -> TextStream:
    """Start generating; iterate the result for text pieces."""
    return TextStream(loaded, messages, settings)
