"""`local/<base>+adapter:<name>[@<version>]`: a fine-tuned LoRA adapter stacked on a local base model.

This module parses the model string and puts adapter folders (peft's `save_pretrained` layout) on the process's ONE
shared copy of the base: the first adapter wraps that copy in a PeftModel, later ones are added to it with
`load_adapter`, so ten adapters cost ten small adapter files, not ten copies of the base. Before each generation
(under the generation lock in generate.py) the right adapter is switched on with `set_adapter`; the plain base
generates with every adapter disabled (`disable_adapter`). Which folder a name and version stand for is not known
here: this module owns a registry of resolvers (`set_adapter_resolver`), and the package face (`workbench/__init__.py`,
the top floor) registers the MLflow-backed one of workbench.finetune, which it imports only when an adapter name is
first asked for. A lower floor never imports finetune: the registry is the only edge. A resolver takes (name, version
or None for the latest) and returns the adapter folder, or None when it does not know the name; it may raise a
WorkbenchError that says what exists.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import ModelError
from workbench.providers.local.generate import generation_lock
from workbench.providers.local.names import _SEPARATOR, LocalModelName, parse_model_name, resolve_adapter
from workbench.providers.local.resolvers import ADAPTER_RESOLVERS, AdapterResolver, set_adapter_resolver
from workbench.providers.local.weights import LoadedModel, _as_folder, load_base, shared_model

__all__ = [
    "LocalModelName",
    "AdapterResolver",
    "ADAPTER_RESOLVERS",
    "parse_model_name",
    "set_adapter_resolver",
    "resolve_adapter",
    "load_with_adapter",
    "model_for",
    "AdapterHost",
]

_lock = threading.Lock()


def load_with_adapter(base: str, adapter_folder: str | os.PathLike[str], label: str | None = None) -> LoadedModel:
    """A fresh copy of `base` with the adapter merged into its weights (what Adapter.merge saves; the shared base
    stays untouched)."""
    from peft import PeftModel

    loaded = load_base(base)
    try:
        merged = PeftModel.from_pretrained(loaded.model, str(adapter_folder)).merge_and_unload()
    except Exception as exc:
        raise _cannot_apply(base, adapter_folder, exc) from exc
    merged.eval()
    loaded.model = merged
    loaded.adapter = label or Path(adapter_folder).name
    loaded.name = f"{base}{_SEPARATOR}{loaded.adapter}"
    loaded.extra["adapter_path"] = str(adapter_folder)
    return loaded


def _cannot_apply(base: str, folder: str | os.PathLike[str], exc: Exception) -> ModelError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    return ModelError(f"local/{base}: cannot apply the adapter in {folder} ({type(exc).__name__}: {first}); "
                      f"was it trained on {base}?")


@dataclass
class AdapterHost:
    """The shared base of one process and the adapters loaded onto it (one PeftModel, many named adapters)."""

    base: LoadedModel
    peft: Any = None  # the PeftModel wrapping base.model, made by the first adapter
    names: dict[str, str] = field(default_factory=dict)  # adapter folder -> peft adapter name

    @contextlib.contextmanager
    def use(self, adapter: str | None) -> Iterator[None]:
        """Generate with `adapter` on (None: the plain base). Called under the generation lock."""
        if self.peft is None:
            yield
        elif adapter is None:
            with self.peft.disable_adapter():
                yield
        else:
            self.peft.set_adapter(adapter, inference_mode=True)
            yield

    def add(self, folder: Path, label: str, base_name: str) -> LoadedModel:
        """A LoadedModel that generates with the adapter in `folder` on, sharing the base's weights."""
        with generation_lock(), warnings.catch_warnings():  # injecting LoRA layers mid-generation would corrupt it
            warnings.simplefilter("ignore", FutureWarning)  # transformers' deprecation notes, raised inside peft
            adapter = self.names.get(str(folder))
            if adapter is None:
                adapter = f"a{len(self.names)}"  # peft names become module keys: no dots or slashes
                try:
                    if self.peft is None:
                        from peft import PeftModel

                        self.peft = PeftModel.from_pretrained(self.base.model, str(folder), adapter_name=adapter)
                        self.peft.eval()
                        self.base.extra["scope"] = lambda: self.use(None)  # the plain base: adapters off
                    else:
                        self.peft.load_adapter(str(folder), adapter_name=adapter)
                except Exception as exc:
                    raise _cannot_apply(base_name, folder, exc) from exc
                self.names[str(folder)] = adapter
        loaded = LoadedModel(f"{base_name}{_SEPARATOR}{label}", self.peft, self.base.tokenizer, self.base.source,
                             self.base.path, adapter=label)
        loaded.extra.update(adapter_path=str(folder), base=self.base, scope=lambda: self.use(adapter))
        return loaded


_hosts: dict[str, AdapterHost] = {}


def _base_key(base: str) -> str:
    folder = _as_folder(base)  # two spellings of one folder share one loaded copy
    return str(folder) if folder is not None else base


def _host(key: str, base: str) -> AdapterHost:
    loaded = shared_model(key, lambda: load_base(base))
    with _lock:
        host = _hosts.get(key)
        if host is None or host.base is not loaded:  # unload_models() dropped the old base
            host = _hosts[key] = AdapterHost(loaded)
    return host


def model_for(name: str) -> LoadedModel:
    """The process-wide loaded model for a local model name, adapter included (sharing the base's weights)."""
    spec = parse_model_name(name)
    key = _base_key(spec.base)
    if spec.adapter is None:
        return shared_model(key, lambda: load_base(spec.base))
    folder = resolve_adapter(spec)  # asked every call: "latest" moves when a new version is registered
    label = f"{spec.adapter}@{spec.version or 'latest'}"
    host = _host(key, spec.base)
    return shared_model(f"{key}{_SEPARATOR}{folder}", lambda: host.add(folder, label, spec.base))
