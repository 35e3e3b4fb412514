"""A call's budget: its estimated cost, reserved under every budget that applies before it is sent (see
Ledger.reserve), and the one-line refusal when it does not fit."""

from __future__ import annotations

from workbench.errors import BudgetExceeded
from workbench.gateway import models, prices, stores
from workbench.gateway.calls import PreparedCall
from workbench.gateway.ledger import Refusal
from workbench.gateway.prices import format_usd

__all__ = ["estimate", "refusal_error", "reserve"]


def reserve(call: PreparedCall) -> tuple[int | None, tuple[int, int, float]]:
    """(reservation id, estimate) for a call, or BudgetExceeded. A call under no budget reads the budgets table and
    nothing more (no write, no transaction): (None, (0, 0, 0.0))."""
    ledger = stores.ledger()
    budgets = ledger.budgets_for(call.tags)
    if not budgets:
        return None, (0, 0, 0.0)
    guess = estimate(call)
    found = ledger.reserve(budgets, call.tags, guess[2])
    if isinstance(found, Refusal):
        raise refusal_error(found, guess[2])
    return found, guess


def estimate(call: PreparedCall, *, history: bool = True) -> tuple[int, int, float]:
    """(prompt tokens, completion tokens, USD) this call may cost: prompt characters / 4, and max_tokens, or when
    it is not set, the longest of the model's last answers in the ledger (not asked with history=False: on the
    way out of a Ctrl-C). A model with no price costs 0."""
    primary = call.primary
    model = next(iter(primary.weights)) if isinstance(primary, models.Route) else primary
    prompt = sum(len(str(m.get("content") or "")) for m in call.messages) // 4 + 1
    completion = call.params.get("max_tokens") or call.params.get("max_completion_tokens")
    if not completion and history:
        completion = stores.ledger().typical_completion_tokens(model)
    price = prices.price_of(model)
    completion = int(completion or 0)
    return prompt, completion, 0.0 if price is None else price.cost(prompt, completion)


def refusal_error(refusal: Refusal, estimate: float) -> BudgetExceeded:
    budget, spent = refusal.budget, refusal.spent_usd
    scope = "the global budget" if budget.tag is None else f"the budget for {budget.tag[0]}={budget.tag[1]}"
    how = "set_budget(usd=...)" if budget.tag is None else f"set_budget(usd=..., tag={budget.tag!r})"
    return BudgetExceeded(
        f"refused: {scope} is {format_usd(budget.usd)} and {format_usd(spent)} is spent or reserved by calls in "
        f"flight (this call may cost {format_usd(estimate)}); "
        f"raise it with workbench.{how} or call with cache hits only",
        budget_usd=budget.usd,
        spent_usd=spent,
    )
