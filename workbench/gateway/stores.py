"""The answer cache and cost ledger of the current home folder, opened once per process and home."""

from __future__ import annotations

from workbench.gateway.cache import AnswerCache
from workbench.gateway.ledger import Ledger
from workbench.sqlite_store import forget_per_home, per_home

__all__ = ["cache", "ledger", "reset"]


def cache() -> AnswerCache:
    return per_home("cache.sqlite", AnswerCache)


def ledger() -> Ledger:
    return per_home("ledger.sqlite", Ledger)


def reset() -> None:
    """Drop open stores (after the home folder changes)."""
    forget_per_home()
