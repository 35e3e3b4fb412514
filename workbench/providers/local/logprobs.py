"""Token log-probabilities from a local model, in OpenAI's shape (`logprobs=True, top_logprobs=N`).

The provider asks `wanted()` and, when the caller asked for them, generates through `generate_with_logprobs()`
instead of the plain `generate()`: the same generation (greedy or sampled as asked), with the model's raw
logits kept for every new token, turned into the chosen token's log-probability and the N most likely tokens.
A judge reading a 1-5 score from them needs one forward step and never a parse.
"""

from __future__ import annotations

from typing import Any

from workbench.errors import ConfigError
from workbench.providers.local import generate as local_generate
from workbench.providers.local.generate import Generation, GenerationSettings

__all__ = ["generate_with_logprobs", "wanted"]

_MAX_TOP = 20  # OpenAI's limit


def wanted(params: dict[str, Any]) -> int | None:
    """How many alternatives per token were asked for (0 = the chosen token only), or None: no logprobs."""
    if not params.get("logprobs"):
        return None
    top = params.get("top_logprobs") or 0
    if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= _MAX_TOP:
        raise ConfigError(f"top_logprobs={top!r} must be a whole number from 0 to {_MAX_TOP}")
    return top


def _entry(tokenizer: Any, token_id: int, logprob: float) -> dict[str, Any]:
    text = tokenizer.decode([token_id])
    return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8"))}


def generate_with_logprobs(loaded: Any, messages: list[dict[str, Any]], settings: GenerationSettings,
                           top: int) -> tuple[Generation, dict[str, Any]]:
    """(the answer, {"content": [per new token: token, logprob, top_logprobs]})."""
    import torch

    with local_generate._LOCK:  # the same lock as every generation: one model, one tokenizer
        inputs = local_generate._encode(loaded, messages)
        prompt_len = int(inputs["input_ids"].shape[1])
        output = local_generate._run_generate(loaded, inputs, settings, output_logits=True,
                                              return_dict_in_generate=True)
        new_ids = output.sequences[0, prompt_len:].tolist()
        specials = local_generate._special_ids(loaded)
        content = []
        for token_id, logits in zip(new_ids, output.logits, strict=False):
            logprobs = torch.log_softmax(logits[0].float(), dim=-1)
            entry = _entry(loaded.tokenizer, token_id, float(logprobs[token_id]))
            best = torch.topk(logprobs, top) if top else None
            entry["top_logprobs"] = [] if best is None else [
                _entry(loaded.tokenizer, int(i), float(v)) for v, i in zip(best.values, best.indices, strict=True)]
            if token_id not in specials:
                content.append(entry)
        text = loaded.tokenizer.decode(new_ids, skip_special_tokens=True)
        tokens = len([t for t in new_ids if t not in specials])
        finish = local_generate._finish_reason(loaded, new_ids, settings, False)
        return Generation(text, prompt_len, tokens, finish), {"content": content}
