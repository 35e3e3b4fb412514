"""The cache and ledger of the current home folder, opened once per process."""

from __future__ import annotations

import threading

from workbench.gateway.cache import AnswerCache
from workbench.gateway.ledger import Ledger

__all__ = ["cache", "ledger", "reset"]

_lock = threading.Lock()
_cache: AnswerCache | None = None
_ledger: Ledger | None = None


def cache() -> AnswerCache:
    global _cache
    if _cache is None:
        from workbench.config import settings

        with _lock:
            if _cache is None:
                _cache = AnswerCache(settings().cache_path)
    return _cache


def ledger() -> Ledger:
    global _ledger
    if _ledger is None:
        from workbench.config import settings

        with _lock:
            if _ledger is None:
                _ledger = Ledger(settings().ledger_path)
    return _ledger


def reset() -> None:
    """Drop open stores (after the home folder changes)."""
    global _cache, _ledger
    with _lock:
        if _ledger is not None:
            _ledger.close()
        _cache = None
        _ledger = None
