"""Spend, budgets and cache housekeeping: the public face of the ledger and the cache."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.gateway import stores
from workbench.gateway import team as team_gateway
from workbench.gateway.ledger import Budget

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["spend", "calls", "set_budget", "budgets", "clear_cache", "cache_size"]


def spend(by: str = "model", *, team: bool = False) -> pd.DataFrame:
    """Calls, tokens and USD grouped by `model` (the model that answered) or by a tag, e.g. by='project'.

    team=True: the team gateway's budgets instead, each with what is spent in its current window (your
    own budget among them), read from the team server."""
    if team:
        return team_gateway.spend()
    return stores.ledger().spend(by)


def calls(limit: int | None = None) -> pd.DataFrame:
    """The ledger's rows, newest first."""
    return stores.ledger().calls(limit)


def set_budget(usd: float | None, tag: tuple[str, str] | None = None) -> Budget | None:
    """Refuse calls that would take spending over `usd` (for every call, or those tagged `tag=(key, value)`).

    Spending counts from when the budget was first set; `usd=None` removes the budget.
    """
    return stores.ledger().set_budget(usd, tag)


def budgets() -> list[Budget]:
    return stores.ledger().budgets()


def clear_cache() -> int:
    """Empty the answer cache; returns how many answers were removed."""
    return stores.cache().clear()


def cache_size() -> int:
    return stores.cache().count()
