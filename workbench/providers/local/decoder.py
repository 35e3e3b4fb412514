"""The fast generation backends for Llama-shaped `local/` models: which one serves a call, and a hand-written torch
decoder with a preallocated KV cache.

`decoder_for` picks: greedy calls go to the CTranslate2 engine (ct2_engine.py, the default: 2.5-3x the old path
with the same fp32 weights and answers); sampled calls, models without a folder on disk (a merged adapter) and
machines without ctranslate2 go to the torch decoder below (fp16 weights by default).

Why not `model.generate`: for a 135M model on a laptop CPU, transformers' generate spends as much time in per-token
Python (logits processors, cache objects, stopping criteria, module hooks) as in the matmuls, and it reads fp32
weights (540 MB a token for SmolLM2). Decoding is bound by memory bandwidth, so the bytes read per token set the
ceiling: this decoder reads the linear layers as fp16 by default (fbgemm's fp16 GEMM, fp32 accumulation; int8 is
opt-in, see _Linear) and runs the rest (norms, RoPE, attention over the cache) in fp32, with q/k/v and gate/up
fused into one matmul each. A logprobs request gets each new token's logits back too (DecoderOutput).
bench/bench_local.py measures it against generate in the same run; docs/decisions.md has the numbers.

It serves only what it can serve exactly like the model it was built from: a LlamaForCausalLM (SmolLM2 and kin) with
default RoPE, no biases and SiLU; anything else, and any call with a LoRA adapter switched on, goes through
transformers (`supports` says which). `WORKBENCH_LOCAL_BACKEND=transformers` forces the fallback; `=fp32` keeps
this decoder but in full precision (identical greedy answers to generate, for comparison).

The weights are taken from the loaded HF model (not re-read from disk), through `base_layer` where peft wrapped a
layer, so a shared base that already carries adapters builds the same plain-base decoder.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workbench.errors import ConfigError, WorkbenchWarning

__all__ = ["ENV", "KINDS", "DecoderOutput", "FastDecoder", "backend_name", "check_settings", "decoder_for",
           "generate_ids", "supports"]

ENV = "WORKBENCH_LOCAL_BACKEND"
KINDS = ("ctranslate2", "fp16", "int8", "fp32", "transformers")  # the first is the default
_build_lock = threading.Lock()


def backend_name() -> str:
    """The backend the environment asks for: ctranslate2 (default; sampled calls use fp16), fp16, int8, fp32 (the
    torch decoder with those weights), or transformers (the fallback: `model.generate`)."""
    chosen = os.environ.get(ENV, "").strip().lower() or KINDS[0]
    if chosen not in KINDS:
        raise ConfigError(f"{ENV}={chosen!r} is not a local backend: use one of {', '.join(KINDS)}")
    return chosen


def check_settings() -> None:
    """Check the environment's backend settings before a call starts: a bad value is the user's one-line error,
    not a generation failure the gateway would retry and offer a fallback for."""
    from workbench.providers.local import ct2_engine

    backend_name()
    ct2_engine.configured_threads()


def supports(model: Any) -> bool:
    """Whether `model` is a Llama decoder this backend reproduces exactly (architecture, RoPE, no biases, and no
    generation_config setting that generate would apply and this loop does not)."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "model_type", None) != "llama" or type(model).__name__.startswith("Peft"):
        return False
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    if (rope.get("rope_type") or rope.get("type") or "default") != "default":
        return False
    generation = getattr(model, "generation_config", None)
    if generation is not None and ((getattr(generation, "repetition_penalty", None) or 1.0) != 1.0
                                   or getattr(generation, "no_repeat_ngram_size", None)
                                   or getattr(generation, "bad_words_ids", None)
                                   or getattr(generation, "min_new_tokens", None)
                                   or (getattr(generation, "min_length", None) or 0) > 0):
        return False
    return (not getattr(config, "attention_bias", False) and not getattr(config, "mlp_bias", False)
            and getattr(config, "hidden_act", "silu") == "silu" and getattr(config, "pretraining_tp", 1) == 1)


def _fbgemm() -> bool:
    import torch

    return "fbgemm" in torch.backends.quantized.supported_engines  # x86; ARM (Apple) has no fbgemm kernels


def _weight(module: Any) -> Any:
    return getattr(module, "base_layer", module).weight.detach()  # peft keeps the base weight in base_layer


class _Linear:
    """y = x @ W.T with W stored as `kind`; activations stay fp32 in and out.

    fp16: fbgemm's fp16 GEMM (weights packed once as fp16, converted in registers, fp32 accumulation): half the
    bytes of fp32 and, for SmolLM2, whose weights are 4-bit values from a GGUF, the same greedy answers.
    int8: fbgemm's dynamic-quantized linear (int8 weights per output channel, activations quantized per call to
    7 bits): a quarter of the bytes, but the activation rounding changes answers a lot on a model this small.
    """

    def __init__(self, weight: Any, kind: str) -> None:
        import torch

        self.kind = kind
        self.out_features = int(weight.shape[0])
        weight = weight.float().contiguous()
        if kind == "int8":
            scales = weight.abs().amax(dim=1).clamp(min=1e-8) / 127.0
            quantized = torch.quantize_per_channel(weight, scales.double(), torch.zeros_like(scales, dtype=torch.long),
                                                   0, torch.qint8)
            self.packed = torch.ops.quantized.linear_prepack(quantized, None)
            self.weight_bytes = weight.numel() + 8 * weight.shape[0]
        elif kind == "fp16":
            self.packed = torch.ops.quantized.linear_prepack_fp16(weight, None)
            self.weight_bytes = weight.numel() * 2
        else:
            self.weight = weight
            self.weight_bytes = weight.numel() * 4

    def __call__(self, x: Any) -> Any:
        import torch

        if self.kind == "fp16":
            return torch.ops.quantized.linear_dynamic_fp16(x, self.packed)
        if self.kind == "int8":
            return torch.ops.quantized.linear_dynamic(x, self.packed, True)  # reduce_range: AVX2 saturates 8-bit
        return torch.nn.functional.linear(x, self.weight)


@dataclass
class _Layer:
    input_norm: Any
    qkv: _Linear
    o: _Linear
    post_norm: Any
    gate_up: _Linear
    down: _Linear


class FastDecoder:
    """One model's decoder: `prefill(ids)` then `step(token)`, each returning the next-token logits (fp32)."""

    @property
    def label(self) -> str:
        return f"{self.kind} decoder"

    def __init__(self, model: Any, kind: str = "fp16") -> None:
        import torch

        config = model.config
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model
        body = inner.model
        self.kind = kind
        self.n_heads = config.num_attention_heads
        self.n_kv = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.n_heads
        self.eps = float(config.rms_norm_eps)
        rope = getattr(config, "rope_parameters", None) or {}
        self.theta = float(rope.get("rope_theta", getattr(config, "rope_theta", 10000.0)))
        self.layers: list[_Layer] = []
        for block in body.layers:
            attn, mlp = block.self_attn, block.mlp
            qkv = torch.cat([_weight(attn.q_proj), _weight(attn.k_proj), _weight(attn.v_proj)])
            gate_up = torch.cat([_weight(mlp.gate_proj), _weight(mlp.up_proj)])
            self.layers.append(_Layer(block.input_layernorm.weight.detach().float(), _Linear(qkv, kind),
                                      _Linear(_weight(attn.o_proj), kind),
                                      block.post_attention_layernorm.weight.detach().float(),
                                      _Linear(gate_up, kind), _Linear(_weight(mlp.down_proj), kind)))
        self.final_norm = body.norm.weight.detach().float()
        self.embed = _weight(body.embed_tokens).float()  # a lookup reads one row a token: kept fp32
        self.lm_head = _Linear(_weight(inner.lm_head), kind)
        self.intermediate = self.layers[0].gate_up.out_features // 2
        self.max_len = 0
        self.length = 0
        self._cache: list[tuple[Any, Any]] = []
        inv = 1.0 / (self.theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.int64).float() / self.head_dim))
        self._inv_freq = inv
        self.hidden = config.hidden_size
        # rotate_half as a matrix: x @ R == cat(-x[half:], x[:half]), HF's (non-interleaved) RoPE layout
        half = self.head_dim // 2
        rotate = torch.zeros(self.head_dim, self.head_dim)
        rotate[half:, :half] = -torch.eye(half)
        rotate[:half, half:] = torch.eye(half)
        self._rotate = rotate

    @property
    def bytes_per_token(self) -> int:
        """Weight bytes read to generate one token (every linear layer, the LM head and one embedding row)."""
        linears = [self.lm_head] + [lin for layer in self.layers for lin in (layer.qkv, layer.o, layer.gate_up,
                                                                              layer.down)]
        return sum(lin.weight_bytes for lin in linears) + self.embed.shape[1] * 4

    def _grow(self, needed: int) -> None:
        """Room in the KV cache for `needed` positions (doubling, so a long answer reallocates a few times only)."""
        import torch

        if needed <= self.max_len:
            return
        size = max(needed, 2 * self.max_len, 256)
        cache = []
        for index in range(len(self.layers)):
            k = torch.zeros(self.n_kv, size, self.head_dim)
            v = torch.zeros(self.n_kv, size, self.head_dim)
            if self._cache and self.length:
                k[:, : self.length] = self._cache[index][0][:, : self.length]
                v[:, : self.length] = self._cache[index][1][:, : self.length]
            cache.append((k, v))
        self._cache, self.max_len = cache, size
        freqs = torch.outer(torch.arange(size, dtype=torch.float32), self._inv_freq)
        emb = torch.cat([freqs, freqs], dim=-1)
        self._cos, self._sin = emb.cos(), emb.sin()

    def _forward(self, ids: Any) -> Any:
        """Run `ids` (1-D) at positions length.., append their keys/values, return the last position's logits.

        Few tensor ops per layer on purpose (fused q/k/v and gate/up, one rms_norm op, RoPE on q and k at once as
        x*cos + (x@R)*sin): at one token per step the per-op dispatch cost is as large as the arithmetic.
        """
        import torch
        import torch.nn.functional as F

        count = int(ids.shape[0])
        start, end = self.length, self.length + count
        self._grow(end)
        cos = self._cos[start:end].view(count, 1, self.head_dim)
        sin = self._sin[start:end].view(count, 1, self.head_dim)
        rotate = self._rotate
        heads, kv, dim, hidden = self.n_heads, self.n_kv, self.head_dim, self.hidden
        normed = (hidden,)
        mask = None if count == 1 else torch.ones(count, end, dtype=torch.bool).tril(diagonal=start)
        h = self.embed[ids]  # [count, hidden]
        for layer, (k_cache, v_cache) in zip(self.layers, self._cache, strict=True):
            x = torch.rms_norm(h, normed, layer.input_norm, self.eps)
            qkv = layer.qkv(x).view(count, heads + 2 * kv, dim)
            qk = qkv[:, : heads + kv]
            qk = torch.addcmul(qk * cos, torch.matmul(qk, rotate), sin)
            k_cache[:, start:end] = qk[:, heads:].transpose(0, 1)
            v_cache[:, start:end] = qkv[:, heads + kv:].transpose(0, 1)
            attended = F.scaled_dot_product_attention(qk[:, :heads].transpose(0, 1), k_cache[:, :end],
                                                      v_cache[:, :end], attn_mask=mask, enable_gqa=True)
            h = h + layer.o(attended.transpose(0, 1).reshape(count, heads * dim))
            x = torch.rms_norm(h, normed, layer.post_norm, self.eps)
            gate_up = layer.gate_up(x)
            h = h + layer.down(F.silu(gate_up[:, : self.intermediate]) * gate_up[:, self.intermediate:])
        self.length = end
        return self.lm_head(torch.rms_norm(h[-1:], normed, self.final_norm, self.eps))[0]

    def prefill(self, ids: Any) -> Any:
        """Start a new sequence with the prompt `ids` (1-D tensor); logits for the next token."""
        self.length = 0
        return self._forward(ids)

    def step(self, token: int) -> Any:
        import torch

        return self._forward(torch.tensor([token]))


def decoder_for(loaded: Any, greedy: bool = True) -> Any:
    """What generates for a loaded model: the CTranslate2 engine (greedy calls, by default), a FastDecoder (built
    once, kept in `loaded.extra`), or None where transformers serves: the fallback asked for, a model this decoder
    does not reproduce, or a LoRA adapter stacked unmerged on the shared base (its LoRA matmuls live in peft's
    modules)."""
    kind = backend_name()
    if kind == "transformers" or loaded.extra.get("base") is not None or not supports(loaded.model):
        return None
    if kind == "ctranslate2":
        engine = _engine(loaded) if greedy else None
        if engine is not None:
            return engine
        kind = "fp16"
    if kind in ("fp16", "int8") and not _fbgemm():
        kind = "fp32"
    cached = loaded.extra.get("fast_decoder")
    if cached is not None and cached.kind == kind:
        return cached
    with _build_lock:
        cached = loaded.extra.get("fast_decoder")
        if cached is None or cached.kind != kind:
            import torch

            with torch.inference_mode():
                cached = FastDecoder(loaded.model, kind)
            loaded.extra["fast_decoder"] = cached
    return cached


def _engine(loaded: Any) -> Any:
    """The model's CTranslate2 engine, loaded once (converted once per user); None, and one warning saying why,
    where it cannot serve: then the fp16 decoder does."""
    if "ct2_engine" in loaded.extra:
        return loaded.extra["ct2_engine"]
    with _build_lock:  # one engine per model, whatever threads (doctor, a bench, generation) ask at once
        if "ct2_engine" not in loaded.extra:
            loaded.extra["ct2_engine"] = _load_engine(loaded)
    return loaded.extra["ct2_engine"]


def _load_engine(loaded: Any) -> Any:
    from workbench.providers.local import ct2_engine
    from workbench.providers.local import weights as local_weights

    engine, why = None, ""
    folder = local_weights.weights_folder(loaded)
    threads = ct2_engine.threads()  # a bad WORKBENCH_LOCAL_THREADS is the user's error to see, not a fallback
    if not ct2_engine.available():
        why = "ctranslate2 is not installed (pip install ctranslate2)"
    elif folder is None:  # a merged adapter: its weights exist only in memory (expected, no warning)
        pass
    else:
        try:
            engine = ct2_engine.load_engine(loaded.name, folder, local_weights.model_cache_dir(), threads)
        except Exception as exc:  # noqa: BLE001 - any failure of the optional engine falls back, and says so
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            why = f"preparing it failed ({type(exc).__name__}: {first})"
    if why:
        warnings.warn(f"local/{loaded.name}: the CTranslate2 engine is not used: {why}; generating with the fp16 "
                      f"torch decoder instead (less than half the speed). {ENV}=fp16 silences this.",
                      WorkbenchWarning, stacklevel=4)
    return engine


def _pick(logits: Any, temperature: float, top_p: float | None) -> int:
    """Greedy at temperature 0; otherwise sample from softmax(logits / T), cut to the top_p nucleus."""
    import torch

    if temperature <= 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p is not None and top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        keep = sorted_probs.cumsum(-1) - sorted_probs < top_p  # the smallest set whose mass reaches top_p
        probs = torch.zeros_like(probs).scatter_(0, order[keep], sorted_probs[keep])
    return int(torch.multinomial(probs, 1))


@dataclass
class DecoderOutput:
    """What `model.generate(..., output_logits=True, return_dict_in_generate=True)` returns, in the parts read here:
    the ids and, per new token, the raw logits [1, vocab] it was picked from (providers/local/logprobs reads them)."""

    sequences: Any
    logits: tuple[Any, ...]


def generate_ids(decoder: Any, input_ids: Any, *, max_new_tokens: int, temperature: float = 0.0,
                 top_p: float | None = None, eos_ids: set[int] | frozenset[int] = frozenset(),
                 stopping_criteria: Callable[[Any, Any], Any] | None = None, streamer: Any = None,
                 output_logits: bool = False) -> Any:
    """Prompt plus new token ids as one [1, n] tensor, as `model.generate` returns them (eos included); with
    `output_logits`, a DecoderOutput that also holds each new token's logits (a logprobs request).

    `stopping_criteria` is called like transformers' (ids so far, scores) after each token; `streamer` gets the
    prompt, then each token, then `end()`, like transformers' streamers.
    """
    if not isinstance(decoder, FastDecoder):  # the CTranslate2 engine: greedy only (decoder_for sees to it)
        if temperature > 0:
            raise ValueError("the CTranslate2 engine serves greedy calls only")
        sequences, logits = decoder.generate_ids(input_ids, max_new_tokens=max_new_tokens, eos_ids=eos_ids,
                                                 stopping_criteria=stopping_criteria, streamer=streamer,
                                                 output_logits=output_logits)
        return DecoderOutput(sequences, logits) if logits is not None else sequences
    import torch

    kept: list[Any] = []

    prompt = input_ids[0]
    ids = torch.empty(prompt.shape[0] + max_new_tokens, dtype=torch.long)
    ids[: prompt.shape[0]] = prompt
    length = prompt.shape[0]
    if streamer is not None:
        streamer.put(prompt.unsqueeze(0))  # skipped as the prompt, as generate does
    try:
        with torch.inference_mode():
            logits = decoder.prefill(prompt)
            for _ in range(max_new_tokens):
                token = _pick(logits, temperature, top_p)
                if output_logits:
                    kept.append(logits.unsqueeze(0))  # a fresh tensor each step (the LM head's output)
                ids[length] = token
                length += 1
                if streamer is not None:
                    streamer.put(torch.tensor([token]))
                if token in eos_ids:
                    break
                if stopping_criteria is not None and bool(stopping_criteria(ids[:length].unsqueeze(0), None)[0]):
                    break
                if length - prompt.shape[0] >= max_new_tokens:
                    break
                logits = decoder.step(token)
    finally:
        if streamer is not None:
            streamer.end()
    sequences = ids[:length].unsqueeze(0)
    return DecoderOutput(sequences, tuple(kept)) if output_logits else sequences
