"""`Adapter`: what a fine-tune returns. A registered version of a LoRA adapter, callable at once through the gateway.

    adapter.model           'local/smollm2+adapter:support-v1@3', for %%llm -m, workbench.complete, evaluate, rollout
    adapter.complete(...)   workbench.complete(..., model=adapter.model)
    adapter.merge(path)     the base with the adapter merged in, saved as a plain model: usable as local/<path>
    adapter.gate            the re-evaluation's verdict when the fine-tune had eval_data (base vs adapter)
"""

from __future__ import annotations

import html
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.config import settings
from workbench.errors import ConfigError, ModelError
from workbench.finetune.registry import adapter_folder, client, latest_version
from workbench.gateway.client import complete
from workbench.gateway.response import Response
from workbench.providers.local.adapters import load_with_adapter
from workbench.providers.local.weights import _quiet_loading as quiet_loading  # transformers' bars off
from workbench.verbatim import NO_MATH

if TYPE_CHECKING:
    from workbench.evals.compare import GateResult
    from workbench.evals.result import EvalResult

__all__ = ["Adapter", "install_folder"]


def install_folder(source: Path, name: str, version: str) -> Path:
    """Put a freshly trained adapter where the registry resolver looks first, so the first call downloads nothing."""
    target = settings().home / "adapters" / name / f"v{version}"
    if not (target / "adapter_config.json").is_file():
        staging = target.with_name(f".{target.name}.copy")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(source, staging)
        shutil.rmtree(target, ignore_errors=True)
        staging.replace(target)
    return target


@dataclass
class Adapter:
    name: str
    version: str
    base: str  # local/<base>
    method: str  # sft | dpo
    run_id: str | None = None
    path: Path | None = None  # the local adapter folder
    steps: int = 0
    losses: list[float] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    base_eval: EvalResult | None = None
    adapter_eval: EvalResult | None = None
    gate: GateResult | None = None

    @property
    def model(self) -> str:
        """The gateway's model string for exactly this version."""
        return f"{self.base}+adapter:{self.name}@{self.version}"

    @property
    def latest_model(self) -> str:
        """The model string that follows the newest version of this name."""
        return f"{self.base}+adapter:{self.name}"

    def complete(self, prompt_or_messages: Any, **kwargs: Any) -> Response:
        return complete(prompt_or_messages, self.model, **kwargs)

    def merge(self, path: str | Path) -> Path:
        """Save base + adapter merged into plain weights (with the tokenizer) in `path`; use it as local/<path>."""
        target = Path(path).expanduser().resolve()
        if target.exists() and any(target.iterdir()):
            raise ConfigError(f"path={str(path)!r} exists and is not empty: pass a new folder for the merged model")
        folder = self.path if self.path is not None and self.path.is_dir() else self._download()
        with warnings.catch_warnings():  # transformers' deprecation notes, raised inside peft
            warnings.simplefilter("ignore", FutureWarning)
            loaded = load_with_adapter(self.base.removeprefix("local/"), folder, f"{self.name}@{self.version}")
        try:
            target.mkdir(parents=True, exist_ok=True)
            with quiet_loading():  # no "Writing model shards" bar in a cell
                loaded.model.save_pretrained(target, safe_serialization=True)
                loaded.tokenizer.save_pretrained(target)
        except OSError as exc:
            raise ConfigError(f"cannot write the merged model to {str(target)!r} ({exc.strerror or exc})") from exc
        return target

    def _download(self) -> Path:
        return adapter_folder(self.name, self.version)

    @classmethod
    def load(cls, name: str, version: int | str | None = None) -> Adapter:
        """A registered adapter version (the latest when version is None) read back from MLflow."""
        chosen = str(version) if version is not None else latest_version(name)
        if chosen is None:
            raise ModelError(f"there is no adapter {name!r} in the MLflow registry: fine-tune one with "
                             f"workbench.finetune.lora(..., name={name!r})")
        found = client().get_model_version(name, chosen)
        tags = found.tags or {}
        return cls(name, chosen, tags.get("workbench.base", "local/smollm2"), tags.get("workbench.method", "sft"),
                   found.run_id)

    def __repr__(self) -> str:
        lines = [f"<Adapter {self.model}: {self.method}, {self.steps} steps"
                 + (f", loss {self.losses[0]:.3f} -> {self.losses[-1]:.3f}" if self.losses else "")
                 + (f", run {self.run_id}" if self.run_id else "") + ">"]
        if self.gate is not None:
            lines.append(f"gate {self.gate}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        loss = f"loss {self.losses[0]:.3f} &rarr; {self.losses[-1]:.3f}" if self.losses else ""
        rows = [f"<b>{html.escape(self.model)}</b> &middot; {html.escape(self.method)} &middot; {self.steps} steps "
                f"&middot; {loss}"]
        if self.run_id:
            rows.append(f"MLflow run <code>{html.escape(self.run_id)}</code>")
        if self.base_eval is not None and self.adapter_eval is not None:
            rows.append(f"evaluation runs: base <code>{html.escape(str(self.base_eval.run_id))}</code>, adapter "
                        f"<code>{html.escape(str(self.adapter_eval.run_id))}</code>")
        body = "<br>".join(rows)
        if self.gate is not None:
            body += self.gate._repr_html_()
        return f'<div class="wb-adapter {NO_MATH}">{body}</div>'
