"""Providers registered with litellm as custom providers: `fake/...` and `local/...` (the bundled SLM and others).

`register()` is idempotent and runs on the first gateway call; it imports litellm, so nothing here
runs at `import workbench`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from workbench.providers import fake

__all__ = ["register", "add_provider", "quiet_litellm", "CUSTOM_PROVIDERS"]

# provider prefix -> factory returning a litellm CustomLLM instance (imported lazily)
CUSTOM_PROVIDERS: dict[str, Callable[[], Any]] = {}
_lock = threading.Lock()
_registered: set[str] = set()


# local/weights.py sets torch's OpenMP wait policy when imported, which a process that never runs a local model
# should not get: the local provider's modules load on first registration.
def _local_factory() -> Any:
    from workbench.providers.local.provider import make_provider

    return make_provider()


CUSTOM_PROVIDERS["fake"] = fake.make_provider
CUSTOM_PROVIDERS["local"] = _local_factory


def add_provider(prefix: str, factory: Callable[[], Any]) -> None:
    """Make `prefix/...` model strings go to the CustomLLM that `factory()` builds."""
    CUSTOM_PROVIDERS[prefix] = factory
    with _lock:
        _registered.discard(prefix)


def register() -> None:
    """Register every custom provider with litellm (once per process)."""
    if _registered >= CUSTOM_PROVIDERS.keys():
        return
    import litellm

    with _lock:
        for prefix, factory in CUSTOM_PROVIDERS.items():
            if prefix in _registered:
                continue
            litellm.custom_provider_map = [e for e in litellm.custom_provider_map if e.get("provider") != prefix]
            litellm.custom_provider_map.append({"provider": prefix, "custom_handler": factory()})
            _registered.add(prefix)
        litellm.utils.custom_llm_setup()


_litellm_ready = False


def quiet_litellm() -> Any:
    """litellm, imported on first use, quiet, with our providers registered."""
    global _litellm_ready
    import litellm

    if not _litellm_ready:
        litellm.suppress_debug_info = True
        litellm.set_verbose = False
        for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        register()
        _litellm_ready = True
    return litellm
