"""Prices per model: ours (set_price, fake/, local/) first, then the endpoints file's, then litellm's bundled list.

A model with no known price answers normally with cost_usd=None and one warning per model. litellm lists
self-hosted providers (ollama, vLLM...) at $0: a zero there means "not priced", not "free", so it is None too;
an endpoint with an api_base is priced only by its file entry or set_price.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from workbench.errors import ConfigError, WorkbenchWarning

__all__ = ["format_usd", "own_price", "Price", "set_price", "price_of", "cost_of", "clear_prices", "add_price_rule",
           "PriceRule"]


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
# What answered (an endpoint's label) -> (per-token prices from its file entry or None, names whose set_price
# applies, model string whose litellm price applies or None: a server of one's own), or None when the rule does
# not know the name. The endpoints file registers one (gateway/endpoint_registry.py); this module imports none.
PriceRule = Callable[[str], "tuple[tuple[float | None, float | None] | None, tuple[str, ...], str | None] | None"]
_rules: list[PriceRule] = []


def add_price_rule(rule: PriceRule) -> None:
    if rule not in _rules:
        _rules.append(rule)


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
    """The price of a model string (or of an endpoint that answered), or None when unknown."""
    found = own_price(model)
    if found is not None:
        return found
    rule = next((found for found in (r(model) for r in _rules) if found is not None), None)
    if rule is not None:
        explicit, names, litellm_model = rule
        for name in names:  # set_price on the endpoint's name wins over its file entry
            with _lock:
                if name in _overrides:
                    return _overrides[name]
        if explicit is not None:
            return Price((explicit[0] or 0.0) * 1_000_000, (explicit[1] or 0.0) * 1_000_000)
        if litellm_model is None:
            return None
        model = litellm_model
        found = own_price(model)  # an entry that is only a new name for fake/echo or local/smollm2
        if found is not None:
            return found
    found = _litellm_price(model)
    if found is not None and found.input_per_1m == 0 and found.output_per_1m == 0:
        return None  # litellm's $0 for ollama/, hosted_vllm/, lm_studio/...: unknown, not free
    return found


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
                f"no price known for {model!r}: its cost shows as None (unpriced); set one with "
                f"workbench.set_price({model!r}, input_per_1m=..., output_per_1m=...) or, for an endpoint, "
                "input_cost_per_token/output_cost_per_token in its entry of the endpoints file",
                WorkbenchWarning,
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
