"""Local generation: tokens/s of `local/smollm2` through the gateway vs raw `model.generate`, plus load times.

Both sides use the same loaded weights, prompt and settings (greedy, same max_tokens) in one run, interleaved so
that background load on the machine hits both alike. The gateway side runs with the cache off and counts the whole
call (litellm, chat template, tokenization, ledger). Target: gateway >= 0.95x raw.

Load times: the first load converts the bundled GGUF into a temporary model cache (WORKBENCH_MODEL_CACHE), the cached
load reads the safetensors back from it.

    .venv/bin/python bench/bench_local.py [--max-tokens 96] [--rounds 3]
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROMPT = "Write a short story about a dragon who learns to bake bread."


def _load_times() -> tuple[float, float, str]:
    from workbench.providers.local import weights as local_model

    scratch = tempfile.mkdtemp(prefix="wb-model-cache-")
    previous = os.environ.get("WORKBENCH_MODEL_CACHE")
    os.environ["WORKBENCH_MODEL_CACHE"] = scratch
    try:
        first = local_model.load_base("smollm2")
        cached = local_model.load_base("smollm2")
        assert cached.source == "cache", cached.source
        return first.load_s, cached.load_s, first.source
    finally:
        if previous is None:
            os.environ.pop("WORKBENCH_MODEL_CACHE", None)
        else:
            os.environ["WORKBENCH_MODEL_CACHE"] = previous
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if "WORKBENCH_HOME" not in os.environ:  # a scratch home: the bench's calls stay out of the project's ledger
        os.environ["WORKBENCH_HOME"] = tempfile.mkdtemp(prefix="wb-bench-home-")
        # registered before workbench loads, so it runs after workbench's own exit flushes
        atexit.register(shutil.rmtree, os.environ["WORKBENCH_HOME"], True)

    clock = time.perf_counter()
    import workbench
    from workbench.providers.local import generate as local_generate  # before torch: it sets torch's thread wait policy
    from workbench.providers.local.adapters import model_for

    import torch  # imported up front so the load times below are loads only
    import transformers  # noqa: F401 - likewise

    print(f"imports (workbench, torch)      {time.perf_counter() - clock:6.2f} s")
    first_s, cached_s, first_source = _load_times()
    print(f"first load (GGUF -> cache)      {first_s:6.2f} s   (source: {first_source})")
    print(f"cached load (safetensors)       {cached_s:6.2f} s   ({first_s / cached_s:.0f}x faster)")

    loaded = model_for("smollm2")
    messages = [{"role": "user", "content": PROMPT}]
    inputs = loaded.tokenizer(local_generate.chat_prompt(loaded.tokenizer, messages), return_tensors="pt",
                              add_special_tokens=False)
    prompt_len = inputs["input_ids"].shape[1]

    def raw() -> tuple[int, float]:
        start = time.perf_counter()
        with torch.inference_mode():
            out = loaded.model.generate(**inputs, max_new_tokens=args.max_tokens, do_sample=False,
                                        pad_token_id=loaded.tokenizer.pad_token_id)
        return out.shape[1] - prompt_len, time.perf_counter() - start

    def gateway() -> tuple[int, float]:
        start = time.perf_counter()
        response = workbench.complete(PROMPT, "local/smollm2", max_tokens=args.max_tokens, temperature=0, cache=False)
        return response.completion_tokens, time.perf_counter() - start

    def streamed() -> tuple[int, float]:
        start = time.perf_counter()
        chunks = workbench.stream(PROMPT, "local/smollm2", max_tokens=args.max_tokens, temperature=0, cache=False)
        for _ in chunks:
            pass
        return chunks.response.completion_tokens, time.perf_counter() - start

    # Time spent inside model.generate, whoever calls it: wall time minus this is the gateway's own overhead,
    # a figure that background load on the machine hardly moves.
    in_generate = [0.0]
    plain_generate = loaded.model.generate

    def timed_generate(*a, **k):
        start = time.perf_counter()
        try:
            return plain_generate(*a, **k)
        finally:
            in_generate[0] += time.perf_counter() - start

    sides = {"raw model.generate": raw, "gateway complete": gateway, "gateway stream": streamed}
    for run in sides.values():  # warm up: litellm import, first-call allocations
        run()
    loaded.model.generate = timed_generate
    rates: dict[str, list[float]] = {name: [] for name in sides}
    overhead_ms: dict[str, list[float]] = {name: [] for name in sides}
    tokens: dict[str, int] = {}
    order = list(sides)
    for round_index in range(args.rounds):
        for name in order[round_index % 3:] + order[: round_index % 3]:  # rotate: no side always runs first
            in_generate[0] = 0.0
            count, seconds = sides[name]()
            tokens[name] = count
            rates[name].append(count / seconds)
            overhead_ms[name].append((seconds - in_generate[0]) * 1000)
    loaded.model.generate = plain_generate
    baseline = rates["raw model.generate"]
    print(f"\nprompt {prompt_len} tokens, max_tokens {args.max_tokens}, greedy, {args.rounds} rounds, "
          f"torch threads {torch.get_num_threads()}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
    for name, values in rates.items():
        paired = statistics.median(v / b for v, b in zip(values, baseline, strict=True))
        print(f"{name:<20} {statistics.median(values):7.1f} tok/s (median; {tokens[name]} tokens/call)  "
              f"ratio {paired:5.3f}x (median of per-round ratios)  "
              f"outside generate {statistics.median(overhead_ms[name]):6.1f} ms/call")
    raw_s = args.max_tokens / statistics.median(baseline)
    worst = max(statistics.median(overhead_ms["gateway complete"]), 0.0) / 1000
    print(f"gateway overhead alone, at equal generation speed: {raw_s / (raw_s + worst):5.3f}x")
    print("target: gateway >= 0.95x raw")


if __name__ == "__main__":
    main()
