"""Local generation: `local/smollm2` tokens/s, new backend vs today's path (transformers generate), in one run.

Printed, each as a ratio measured in this run (issue 15's targets):
  - tokens/s through the gateway: the default backend (the CTranslate2 engine, providers/local/ct2_engine.py, fp32
    weights) and the torch fp16 decoder (decoder.py; what sampled calls use) vs the transformers fallback
    (WORKBENCH_LOCAL_BACKEND=transformers, fp32 `model.generate`, the path before issue 15); rounds interleaved and
    rotated so background load hits all alike; median of per-round ratios. Target >= 3x.
  - gateway overhead: the gateway call vs calling the engine directly with the same settings. Target >= 0.95x.
  - memory bandwidth: bytes of weights read per token x tokens/s, against what this machine reads in this run:
    a large numpy copy (one core, reads and writes), and torch summing 512 MB on every core (reads only, like a
    decoding step, which reads every weight once: the ceiling).
  - first answer on an empty model cache (converting the bundled GGUF, loading, answering), new vs old backend.
    The conversion is shared; skip it with --no-first-answer (it takes 20-60 s on 2 busy cores).

    .venv/bin/python bench/bench_local.py [--max-tokens 96] [--rounds 5] [--no-first-answer]
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROMPT = "Write a short story about a dragon who learns to bake bread."
_FIRST_ANSWER = """
import os, sys, time
start = time.perf_counter()
import workbench
from workbench.providers.local import weights as local_model
local_model._SHARE_GGUF_READER = os.environ["WORKBENCH_LOCAL_BACKEND"] != "transformers"  # old: a reader per open
response = workbench.complete("What is the capital of France?", "local/smollm2", max_tokens=16, cache=False)
print(time.perf_counter() - start)
"""


def _bandwidth_gbs(size_mb: int = 512) -> float:
    """Read bandwidth from a large numpy copy (bytes read / time; the copy also writes as many), best of 5."""
    import numpy as np

    source = np.ones(size_mb * 1024 * 1024 // 8)
    target = np.empty_like(source)
    best = min(_timed(lambda: np.copyto(target, source)) for _ in range(5))
    return source.nbytes / best / 1e9


def _read_gbs(size_mb: int = 512) -> float:
    """Read-only bandwidth: torch summing a 512 MB fp32 tensor on every core it uses (a decoding step only reads
    its weights; a copy also writes), best of 5: the ceiling a token's weight reads are measured against."""
    import torch

    source = torch.ones(size_mb * 1024 * 1024 // 4)
    source.sum()
    best = min(_timed(source.sum) for _ in range(5))
    return source.numel() * 4 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _first_answer(backend: str, cache: str) -> float:
    """Seconds from `import workbench` to the first answer in a fresh process (the shared cache as it is).

    backend "transformers" is today's path: generate, and the conversion opening the GGUF once per use.
    """
    # traces stay in memory: a process that exits while MLflow creates its store leaves it half-migrated
    env = {**os.environ, "WORKBENCH_MODEL_CACHE": cache, "WORKBENCH_LOCAL_BACKEND": backend,
           "WORKBENCH_TRACING": "memory", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    out = subprocess.run([sys.executable, "-c", _FIRST_ANSWER], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-first-answer", action="store_true")
    args = parser.parse_args()
    if "WORKBENCH_HOME" not in os.environ:  # a scratch home: the bench's calls stay out of the project's ledger
        os.environ["WORKBENCH_HOME"] = tempfile.mkdtemp(prefix="wb-bench-home-")
        atexit.register(shutil.rmtree, os.environ["WORKBENCH_HOME"], True)
    print(f"load before: {os.getloadavg()[0]:.1f} (1-min load average, {os.cpu_count()} cores)")

    if not args.no_first_answer:
        scratch = tempfile.mkdtemp(prefix="wb-model-cache-")
        try:
            # the first processes convert (old first, then new); the next ones find the converted copy
            convert_old = _first_answer("transformers", scratch)
            shutil.rmtree(scratch)
            convert_new = _first_answer("ctranslate2", scratch)  # GGUF -> safetensors -> CTranslate2 engine
            warm_new, warm_old = _first_answer("ctranslate2", scratch), _first_answer("transformers", scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        print(f"first answer, empty cache       new {convert_new:6.1f} s   old {convert_old:6.1f} s   "
              f"ratio {convert_old / convert_new:4.2f}x faster")
        print(f"first answer, converted cache   new {warm_new:6.1f} s   old {warm_old:6.1f} s   "
              f"ratio {warm_old / warm_new:4.2f}x faster   (fresh process: imports + load + answer)")

    import workbench
    from workbench.providers.local import decoder as local_decoder
    from workbench.providers.local import generate as local_generate  # before torch: sets the thread wait policy
    from workbench.providers.local.adapters import model_for

    loaded = model_for("smollm2")
    import torch  # after workbench on purpose: OMP_WAIT_POLICY must be set before torch loads

    os.environ.pop(local_decoder.ENV, None)
    decoder = local_decoder.decoder_for(loaded)
    assert decoder is not None and decoder.kind == "ctranslate2", f"the default backend is {decoder!r}: not CT2"
    messages = [{"role": "user", "content": PROMPT}]
    inputs = loaded.tokenizer(local_generate.chat_prompt(loaded.tokenizer, messages), return_tensors="pt",
                              add_special_tokens=False)
    prompt_len = int(inputs["input_ids"].shape[1])

    def gateway(backend: str):
        def run() -> tuple[int, float]:
            os.environ[local_decoder.ENV] = backend
            start = time.perf_counter()
            response = workbench.complete(PROMPT, "local/smollm2", max_tokens=args.max_tokens, temperature=0,
                                          cache=False)
            return response.completion_tokens, time.perf_counter() - start
        return run

    def direct() -> tuple[int, float]:
        start = time.perf_counter()
        out = local_decoder.generate_ids(decoder, inputs["input_ids"], max_new_tokens=args.max_tokens, eos_ids={2})
        return int(out.shape[1]) - prompt_len, time.perf_counter() - start

    sides = {"old: transformers generate": gateway("transformers"), "new: CTranslate2 engine": gateway(decoder.kind),
             "new, engine called directly": direct, "torch fp16 decoder (sampling)": gateway("fp16")}
    for run in sides.values():  # warm up: litellm import, first-call allocations
        run()
    rates: dict[str, list[float]] = {name: [] for name in sides}
    order = list(sides)
    for round_index in range(args.rounds):
        shift = round_index % len(order)
        for name in order[shift:] + order[:shift]:  # rotate: no side always runs first
            count, seconds = sides[name]()
            rates[name].append(count / seconds)
    os.environ.pop(local_decoder.ENV, None)
    bandwidth, ceiling = _bandwidth_gbs(), _read_gbs()

    old, new, raw, fp16 = (rates[name] for name in order)
    print(f"\nprompt {prompt_len} tokens, max_tokens {args.max_tokens}, greedy, {args.rounds} rounds, "
          f"torch threads {torch.get_num_threads()}, {decoder.label}, load now {os.getloadavg()[0]:.1f}")
    for name, values in rates.items():
        print(f"{name:<30} {statistics.median(values):7.1f} tok/s (median)   per round: "
              + " ".join(f"{v:.1f}" for v in values))
    speedup = statistics.median(n / o for n, o in zip(new, old, strict=True))
    overhead = statistics.median(n / r for n, r in zip(new, raw, strict=True))
    print(f"generation speed-up, new vs old: {speedup:5.2f}x (median of per-round ratios; target >= 3x)")
    print(f"torch fp16 decoder vs old: {statistics.median(f / o for f, o in zip(fp16, old, strict=True)):5.2f}x "
          "(sampled calls)")
    print(f"gateway vs engine called directly: {overhead:5.3f}x (target >= 0.95x)")
    # fp32 generate reads every parameter once a token (the tied embedding once, as the LM head)
    old_bytes, new_bytes = 4 * sum(p.numel() for p in loaded.model.parameters()), decoder.bytes_per_token
    for label, per_token, values in (("old", old_bytes, old), ("new", new_bytes, raw)):
        used = per_token * statistics.median(values) / 1e9
        print(f"{label}: {per_token / 1e6:5.0f} MB of weights a token x {statistics.median(values):5.1f} tok/s = "
              f"{used:5.2f} GB/s = {used / bandwidth:4.0%} of the {bandwidth:.1f} GB/s a numpy copy reads here, "
              f"{used / ceiling:4.0%} of the {ceiling:.1f} GB/s a read-only sum reads on every core")


if __name__ == "__main__":
    main()
