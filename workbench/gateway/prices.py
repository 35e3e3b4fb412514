"""Prices per model: ours (set_price, fake/, local/) first, then litellm's bundled price list.

A model with no known price answers normally with cost_usd=None and one warning per model.
"""

from __future__ import annotations

import math
import threading
import warnings
from dataclasses import dataclass

from workbench.errors import ConfigError

__all__ = ["format_usd", "own_price", "Price", "set_price", "price_of", "cost_of", "clear_prices"]


@dataclass(frozen=True)
class Price:
    input_per_1m: float
    output_per_1m: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_1m + completion_tokens * self.output_per_1m) / 1_000_000


_BUILTIN_PREFIXES = {
    "fake/": Price(1.0, 2.0),
    "local/": Price(0.0, 0.0),
}
_lock = threading.Lock()
_overrides: dict[str, Price] = {}
_warned: set[str] = set()


def _check_rate(name: str, value: object, model: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigError(
            f"{name}={value!r} for {model!r} is not a price: pass USD per million tokens, e.g. "
            f"set_price({model!r}, input_per_1m=0.15, output_per_1m=0.60)"
        )
    return float(value)


def set_price(model: str, input_per_1m: float, output_per_1m: float) -> Price:
    """Set or override a model's price in USD per million tokens (input and output)."""
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f"model={model!r} is not a model string: pass e.g. set_price('openai/gpt-4o-mini', ...)")
    price = Price(_check_rate("input_per_1m", input_per_1m, model), _check_rate("output_per_1m", output_per_1m, model))
    with _lock:
        _overrides[model.strip()] = price
        _warned.discard(model.strip())
    return price


def clear_prices() -> None:
    with _lock:
        _overrides.clear()
        _warned.clear()


def own_price(model: str) -> Price | None:
    """A price we know without litellm (set_price, fake/, local/); None otherwise."""
    with _lock:
        if model in _overrides:
            return _overrides[model]
    base = model.split("+adapter:", 1)[0]  # an adapter costs what its base costs
    for prefix, price in _BUILTIN_PREFIXES.items():
        if base.startswith(prefix):
            return price
    return None


def _litellm_price(model: str) -> Price | None:
    import litellm

    for key in (model, model.split("/", 1)[-1]):
        info = litellm.model_cost.get(key)
        if info and info.get("input_cost_per_token") is not None:
            return Price(
                float(info.get("input_cost_per_token") or 0) * 1_000_000,
                float(info.get("output_cost_per_token") or 0) * 1_000_000,
            )
    return None


def price_of(model: str) -> Price | None:
    """The price of a model string as litellm sees it, or None when unknown."""
    return own_price(model) or _litellm_price(model)


def cost_of(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    price = price_of(model)
    if price is None and model.startswith("team/"):  # the team gateway prices its calls itself (%llm spend --team)
        return None
    if price is None:
        with _lock:
            first = model not in _warned
            _warned.add(model)
        if first:
            warnings.warn(
                f"no price known for {model!r}: its cost shows as None; set one with "
                f"workbench.set_price({model!r}, input_per_1m=..., output_per_1m=...)",
                stacklevel=4,
            )
        return None
    return price.cost(prompt_tokens, completion_tokens)


def format_usd(amount: float | None) -> str:
    """$1.23 for dollars, $0.000038 for fractions of a cent, 'n/a' for an unknown cost."""
    if amount is None:
        return "n/a"
    if amount == 0 or abs(amount) >= 0.01:
        return f"${amount:,.2f}"
    return "$" + f"{amount:.8f}".rstrip("0")
