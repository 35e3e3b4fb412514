"""Who knows where an adapter's folder is: a registry of resolvers that higher floors fill in.

`local/<base>+adapter:<name>[@<version>]` needs a folder for (name, version); adapters live in MLflow, which the
providers floor must not reach. So this floor owns the registry and the higher ones register into it: the package
face registers workbench.finetune's resolver (loaded on the first adapter name asked for), and finetune registers
itself again when imported. This module imports nothing of ours, so the face can register without loading a model
module (weights.py sets torch's thread policy on import).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

__all__ = ["AdapterResolver", "ADAPTER_RESOLVERS", "set_adapter_resolver", "registered_resolvers"]

# (name, version or None for the latest) -> the adapter folder, or None when the resolver does not know the name
AdapterResolver = Callable[[str, "str | None"], "str | os.PathLike[str] | None"]

# resolver name -> resolver, asked in insertion order
ADAPTER_RESOLVERS: dict[str, AdapterResolver] = {}
_lock = threading.Lock()


def set_adapter_resolver(resolver: AdapterResolver | None, *, name: str = "finetune") -> None:
    """Register (or with None, remove) the function that maps an adapter name and version to its folder."""
    with _lock:
        if resolver is None:
            ADAPTER_RESOLVERS.pop(name, None)
        else:
            ADAPTER_RESOLVERS[name] = resolver


def registered_resolvers() -> list[AdapterResolver]:
    """The resolvers to ask, in registration order (a snapshot: registering while asking is safe)."""
    with _lock:
        return list(ADAPTER_RESOLVERS.values())
