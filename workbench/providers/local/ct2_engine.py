"""The default engine for greedy generation by Llama-shaped `local/` models: CTranslate2, a C++ runtime.

Why: decoding SmolLM2 one token at a time is ~120 small matmuls plus ~250 small ops a token; in torch each costs a
dispatch through Python, so even our hand-written decoder (decoder.py) stays near 25 tokens/s on 2 cores, while
CTranslate2 runs the whole step in C++ (fused kernels, its own KV cache) at 43-55 tokens/s with the same fp32
weights: the same greedy answers as transformers (the 12 recorded course answers are identical), 2.5-3.1x the
old path (fp32 `generate`) in bench/bench_local.py. It ships as a prebuilt wheel (nothing compiles at install)
and reads a model folder converted once from the loaded model's own safetensors (no download). docs/decisions.md
has the measurements.

What it serves: greedy calls (temperature 0, the default, and every judge) of a model decoder.py's `supports()`
accepts whose weights are a folder on disk (the bundled model's cache, a local folder, a hub snapshot). Sampled
calls go to decoder.py's torch decoder: CTranslate2's random generators are per worker thread and cannot be
re-seeded per call, so `seed=` would not repeat an answer. A merged adapter lives only in memory: torch decoder.
Where ctranslate2 is missing or the conversion fails, decoder.py's fp16 decoder serves, with one warning.

The converted folder lives in the model cache, `ctranslate2/<name>-<fingerprint>`: the fingerprint covers the source
folder's path, its weight and config files (size, mtime) and the ctranslate2 version, so a re-converted bundled
model or an edited folder gets a new engine; older folders of the same name are removed. It is written to a
staging folder and renamed when complete, under a file lock, so racing processes and a kill -9 leave no half engine.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.providers.local import progress as local_progress

__all__ = ["QUANTIZATION", "THREADS_ENV", "Ct2Decoder", "available", "configured_threads", "engine_folder",
           "load_engine", "preload", "threads"]

THREADS_ENV = "WORKBENCH_LOCAL_THREADS"
QUANTIZATION = "float32"  # equal answers; int8 halves the bytes again but changes greedy answers on a 135M model
_MARKER = "workbench-engine.json"  # written last: a folder without it is unfinished
_LOCK_TIMEOUT_S = 600.0


def preload() -> None:
    """Load ctranslate2 (80 ms, no torch) before torch loads, when it is installed.

    Both bring their own copy of libgomp, but torch makes its copy's symbols global, so a ctranslate2 loaded after
    torch runs its OpenMP loops on torch's runtime, and that one waits passively (OMP_WAIT_POLICY=PASSIVE, see
    weights.py): every one of the ~200 parallel loops of a token then sleeps and wakes its threads, and generation
    fell from 45 to 20 tokens/s. Loaded first, ctranslate2 keeps its own runtime, with the user's policy.
    """
    available()


def available() -> bool:
    try:
        import ctranslate2  # noqa: F401
    except ImportError:
        return False
    return True


def configured_threads() -> int | None:
    """WORKBENCH_LOCAL_THREADS when set (checked), else None."""
    configured = os.environ.get(THREADS_ENV, "").strip()
    if not configured:
        return None
    if not configured.isdigit() or int(configured) < 1:
        from workbench.errors import ConfigError

        raise ConfigError(f"{THREADS_ENV}={configured!r} must be a whole number of threads >= 1, e.g. "
                          f"{THREADS_ENV}=2")
    return int(configured)


def threads() -> int:
    """OpenMP threads for the engine: every physical core (torch's count), or WORKBENCH_LOCAL_THREADS; 1 when other
    processes already keep every core busy (spinning threads that lose their core stall each other: 2 threads
    beside one busy process on 2 cores gave 11-16 tokens/s, 1 thread 31-35)."""
    configured = configured_threads()
    if configured is not None:
        return configured
    import torch

    cores = max(torch.get_num_threads(), 1)
    with contextlib.suppress(OSError, AttributeError):  # getloadavg: not on Windows
        if os.getloadavg()[0] >= cores + 1:
            return 1
    return cores


def _fingerprint(source: Path) -> str:
    import ctranslate2

    parts = [ctranslate2.__version__, QUANTIZATION, str(source.resolve())]
    for path in sorted(source.iterdir()):
        if path.is_file() and path.suffix in {".safetensors", ".bin", ".json"}:
            stat = path.stat()
            parts.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:60] or "model"


def engine_folder(cache: Path, name: str, source: Path) -> Path:
    """Where the engine converted from `source` lives (it may not exist yet)."""
    return cache / "ctranslate2" / f"{_safe(name)}-{_fingerprint(source)}"


@contextlib.contextmanager
def _no_forced_gc() -> Iterator[None]:
    # The converter calls gc.collect() after every layer: with torch, transformers and litellm loaded that is 0.2 s
    # each, 7 of the 8 s a conversion takes. Nothing here needs it (the tensors are freed by reference counting).
    collect = gc.collect
    gc.collect = lambda generation=2: 0
    try:
        yield
    finally:
        gc.collect = collect


def _convert(source: Path, target: Path, step: Callable[[float, str], None]) -> None:
    from ctranslate2.converters import TransformersConverter
    from transformers.utils import logging as hf_logging

    staging = target.parent / f".{target.name}.tmp-{os.getpid()}-{threading.get_ident()}"
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # no load report or progress bar of transformers' in the user's cell
    hf_logging.disable_progress_bar()
    try:
        step(0.1, "converting the weights for the fast engine")
        with _no_forced_gc():
            TransformersConverter(str(source), low_cpu_mem_usage=True).convert(
                str(staging), quantization=QUANTIZATION, force=True)
        step(0.9, "saving the fast engine")
        (staging / _MARKER).write_text(json.dumps({"source": str(source), "quantization": QUANTIZATION,
                                                   "converted_at": time.time()}, indent=1))
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
        shutil.rmtree(staging, ignore_errors=True)


def _prepare(name: str, source: Path, target: Path) -> None:
    """Convert once per user, whatever processes race for it; drop this model's engines for older weights."""
    from filelock import FileLock

    stem = target.name.rsplit("-", 1)[0]  # the model's part of the folder name
    target.parent.mkdir(parents=True, exist_ok=True)
    # the file lock also serializes threads of one process (each FileLock opens the file anew)
    with FileLock(str(target.parent / f"{stem}.lock"), timeout=_LOCK_TIMEOUT_S):
        if (target / _MARKER).is_file():  # another process finished it while we waited
            return
        for stale in target.parent.glob(f".{target.name}.tmp-*"):  # from a killed process: we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        with local_progress.stage(name, about="a few seconds") as step:
            _convert(source, target, step)
        same_model = re.compile(re.escape(stem) + "-[0-9a-f]{16}")
        for older in target.parent.iterdir():
            if older != target and older.is_dir() and same_model.fullmatch(older.name):
                shutil.rmtree(older, ignore_errors=True)


@dataclass
class Ct2Decoder:
    """A loaded CTranslate2 generator with the `generate_ids` contract of decoder.py's loop."""

    generator: Any
    vocabulary: list[str]
    bytes_per_token: int
    folder: Path
    threads: int
    kind: str = "ctranslate2"

    @property
    def label(self) -> str:
        return f"CTranslate2 engine ({QUANTIZATION}, {self.threads} thread{'s' if self.threads > 1 else ''})"

    def generate_ids(self, input_ids: Any, *, max_new_tokens: int, eos_ids: set[int] | frozenset[int] = frozenset(),
                     stopping_criteria: Callable[[Any, Any], Any] | None = None, streamer: Any = None,
                     output_logits: bool = False) -> tuple[Any, tuple[Any, ...] | None]:
        """Greedy: (prompt plus new ids as one [1, n] tensor, eos included; with `output_logits`, each new token's
        raw logits [1, vocab]). The callback runs after every token: it feeds the streamer, asks the stopping
        criteria (stop strings, a reader that left) and stops the engine at once when they say so."""
        import numpy as np
        import torch

        prompt = input_ids[0]
        ids = torch.empty(1, prompt.shape[0] + max_new_tokens, dtype=prompt.dtype)  # filled as tokens come
        ids[0, : prompt.shape[0]] = prompt
        new: list[int] = []
        failure: list[BaseException] = []

        def on_token(step: Any) -> bool:
            try:
                new.append(int(step.token_id))
                length = prompt.shape[0] + len(new)
                ids[0, length - 1] = new[-1]
                if streamer is not None:
                    streamer.put(ids[0, length - 1 : length])
                # the engine stops by itself at an end token (end_token below)
                return stopping_criteria is not None and bool(stopping_criteria(ids[:, :length], None)[0])
            except BaseException as exc:  # noqa: BLE001 - raised below, on the caller's thread
                failure.append(exc)
                return True

        if streamer is not None:
            streamer.put(prompt.unsqueeze(0))  # skipped as the prompt, as generate does
        try:
            result = self.generator.generate_batch(
                [[self.vocabulary[i] for i in prompt.tolist()]], max_length=max_new_tokens, sampling_topk=1,
                include_prompt_in_result=False, end_token=sorted(eos_ids) or None, return_end_token=True,
                return_logits_vocab=output_logits, callback=on_token)[0]
        finally:
            if streamer is not None:
                streamer.end()
        if failure:
            raise failure[0]
        sequences = ids[:, : prompt.shape[0] + len(new)]
        if not output_logits:
            return sequences, None
        return sequences, tuple(torch.from_numpy(np.array(step, dtype=np.float32)).unsqueeze(0)
                                for step in result.logits[0][: len(new)])


def _open(target: Path, intra_threads: int) -> Ct2Decoder:
    import ctranslate2

    vocabulary = json.loads((target / "vocabulary.json").read_text())
    generator = ctranslate2.Generator(str(target), device="cpu", compute_type=QUANTIZATION,
                                      intra_threads=intra_threads)
    return Ct2Decoder(generator, vocabulary, (target / "model.bin").stat().st_size, target, intra_threads)


def load_engine(name: str, source: Path, cache: Path, intra_threads: int) -> Ct2Decoder:
    """The engine for the weights in `source`, converted first when this user has none for them yet."""
    target = engine_folder(cache, name, source)
    if not (target / _MARKER).is_file():
        _prepare(name, source, target)
    try:
        return _open(target, intra_threads)
    except (OSError, RuntimeError, ValueError):
        # finished once but unreadable now (a disk error, a hand edit): convert it again, once
        shutil.rmtree(target, ignore_errors=True)
        _prepare(name, source, target)
        return _open(target, intra_threads)
