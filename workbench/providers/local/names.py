"""Adapter model names, light enough for the gateway: `local/<base>+adapter:<name>[@<version>]` parsed, resolved
to its folder through the resolver registry, and turned into the identity the answer cache keys on.

Apart from adapters.py (which loads models) so that the gateway can key a call on the adapter version "latest"
stands for now without importing torch, transformers or finetune: a new fine-tune must not be answered from the
old version's cache.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import ModelError, WorkbenchError
from workbench.providers.local.resolvers import registered_resolvers

__all__ = ["LocalModelName", "parse_model_name", "resolve_adapter", "adapter_identity"]

_SEPARATOR = "+adapter:"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$")
_EXAMPLE = "local/smollm2+adapter:support@2"


@dataclass(frozen=True)
class LocalModelName:
    """`local/<base>+adapter:<adapter>@<version>` taken apart (without the `local/` prefix)."""

    base: str
    adapter: str | None = None
    version: str | None = None  # None: the latest version

    def __str__(self) -> str:
        if self.adapter is None:
            return self.base
        return f"{self.base}{_SEPARATOR}{self.adapter}" + (f"@{self.version}" if self.version else "")


def parse_model_name(name: str) -> LocalModelName:
    """Split a local model name (with or without `local/`) into base, adapter and version."""
    if not isinstance(name, str) or not name.strip():
        raise ModelError(f"local model name {name!r} is empty: use e.g. local/smollm2 or {_EXAMPLE}")
    raw = name.strip().removeprefix("local/")
    base, separator, rest = raw.partition(_SEPARATOR)
    if not separator:
        return LocalModelName(raw)
    adapter, at, version = rest.partition("@")
    if not base or not _NAME.match(adapter) or (at and not _NAME.match(version)):
        raise ModelError(f"local/{raw}: write an adapter as local/<base>+adapter:<name>[@<version>], e.g. {_EXAMPLE}")
    return LocalModelName(base, adapter, version if at else None)


def resolve_adapter(spec: LocalModelName) -> Path:
    """The folder holding the adapter `spec` names. Raises ModelError when nothing knows it."""
    if spec.adapter is None:
        raise ModelError(f"local/{spec}: names no adapter; write e.g. {_EXAMPLE}")
    resolvers = registered_resolvers()
    if not resolvers:
        raise ModelError(
            f"local/{spec}: adapter {spec.adapter!r} cannot be found because no adapter registry is set up; "
            f"adapters come from workbench.finetune (fine-tune one there, or register a lookup with "
            f"workbench.providers.local.adapters.set_adapter_resolver)"
        )
    for resolver in resolvers:
        try:
            found = resolver(spec.adapter, spec.version)
        except WorkbenchError:
            raise
        except Exception as exc:
            raise ModelError(f"local/{spec}: looking up adapter {spec.adapter!r} failed ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''}); check the adapter registry") from exc
        if found is not None:
            folder = Path(found).expanduser().resolve()
            if not (folder / "adapter_config.json").is_file():
                raise ModelError(f"local/{spec}: {folder} holds no adapter_config.json; "
                                 f"an adapter folder is what peft's save_pretrained writes")
            return folder
    version = f" version {spec.version}" if spec.version else ""
    raise ModelError(f"local/{spec}: there is no adapter {spec.adapter!r}{version}; "
                     f"list the fine-tuned adapters, or fine-tune one with workbench.finetune")


def adapter_identity(model: str) -> str:
    """`model` itself, unless it names an adapter (`local/<base>+adapter:<name>[@<version>]`): then the base and the
    folder the name and version resolve to now, with a fingerprint of the adapter's files (a resolver of one's own
    may rewrite a folder in place). Raises what resolve_adapter raises when the adapter does not exist."""
    if not model.startswith("local/") or _SEPARATOR not in model:
        return model
    spec = parse_model_name(model)
    folder = resolve_adapter(spec)
    stamp = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.is_file():
            found = path.stat()
            stamp.update(f"{path.name}:{found.st_size}:{found.st_mtime_ns};".encode("utf-8", "surrogatepass"))
    return f"local/{spec.base}{_SEPARATOR}{folder}#{stamp.hexdigest()[:16]}"
