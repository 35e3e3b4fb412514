"""Model names: aliases, weighted routes (a litellm Router each), and validation of model strings."""

from __future__ import annotations

import math
import threading

from workbench.errors import ConfigError, ModelError
from workbench.gateway import endpoint_registry, team
from workbench.gateway.route import Route
from workbench.providers import fake
from workbench.providers.registry import CUSTOM_PROVIDERS, quiet_litellm, register

__all__ = ["Route", "alias", "route", "resolve", "validate_model", "aliases", "routes", "remove", "clear"]

_lock = threading.Lock()
_aliases: dict[str, str] = {}
_routes: dict[str, Route] = {}


def _check_name(kind: str, name: object) -> str:
    if not isinstance(name, str) or not name.strip() or any(c.isspace() for c in name.strip()):
        raise ConfigError(f"{kind} name {name!r} must be a non-empty word without spaces, e.g. {kind}('fast', ...)")
    return name.strip()


def alias(name: str, model: str) -> str:
    """Let `name` stand for `model` everywhere a model string is accepted."""
    name = _check_name("alias", name)
    if name == model:
        raise ConfigError(f"alias {name!r} points at itself: give it a different model string")
    validate_model(model)
    with _lock:
        _aliases[name] = model
        _routes.pop(name, None)
    return model


def route(name: str, weights: dict[str, float]) -> Route:
    """Define `name` as a weighted split between models, e.g. route('chat', {'a': 0.9, 'b': 0.1})."""
    name = _check_name("route", name)
    if not isinstance(weights, dict) or not weights:
        raise ConfigError(f"route {name!r}: weights={weights!r} must be a dict of model -> weight, "
                          "e.g. {'fake/echo': 1}")
    clean: dict[str, float] = {}
    for model, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) or weight < 0:
            raise ConfigError(f"route {name!r}: weight {weight!r} for {model!r} must be a finite number >= 0")
        target = resolve_alias(model)
        if isinstance(resolve(target), Route):
            raise ConfigError(f"route {name!r}: {model!r} is itself a route or endpoint; list model strings instead "
                              "(several entries with one model_name in the endpoints file make an endpoint route)")
        validate_model(target)
        clean[target] = clean.get(target, 0.0) + float(weight)
    if sum(clean.values()) <= 0:
        raise ConfigError(f"route {name!r}: weights {weights!r} add up to 0; give at least one model a weight > 0")
    new = Route(name, {m: w for m, w in clean.items() if w > 0})
    with _lock:
        _routes[name] = new
        _aliases.pop(name, None)
    return new


def remove(name: str) -> None:
    with _lock:
        _aliases.pop(name, None)
        _routes.pop(name, None)


def clear() -> None:
    with _lock:
        _aliases.clear()
        _routes.clear()


def aliases() -> dict[str, str]:
    with _lock:
        return dict(_aliases)


def routes() -> dict[str, Route]:
    with _lock:
        return dict(_routes)


def resolve_alias(model: str) -> str:
    seen: set[str] = set()
    with _lock:
        while model in _aliases:
            if model in seen:
                raise ModelError(f"alias loop at {model!r}: redefine one of {sorted(seen)}")
            seen.add(model)
            model = _aliases[model]
    return model


def resolve(model: str) -> str | Route:
    """An alias becomes its model string; a route name becomes its Route; an endpoint of the endpoints file
    becomes its route (routes and aliases made in this session win over the file)."""
    target = resolve_alias(model)
    with _lock:
        found = _routes.get(target)
    if found is None:
        found = endpoint_registry.lookup(target)
    return found if found is not None else target


def validate_model(model: object) -> str:
    """Raise ModelError unless litellm (or one of our providers) can serve `model`."""
    if not isinstance(model, str) or not model.strip():
        raise ModelError(f"model={model!r} is not a model string: pass e.g. 'openai/gpt-4o-mini' or 'fake/echo'")
    target = resolve(model.strip())
    if isinstance(target, Route):
        return model
    if team.is_team(target):  # an endpoint of the team's gateway: the server knows which exist
        team.check_model(target)
        return model
    litellm = quiet_litellm()

    prefix = target.split("/", 1)[0]
    if prefix in CUSTOM_PROVIDERS:
        if "/" not in target or not target.split("/", 1)[1]:
            raise ModelError(f"model {target!r} names no model after '{prefix}/': e.g. '{prefix}/echo'")
        name = target.split("/", 1)[1].partition("?")[0]
        if prefix == "fake" and name not in fake.MODELS:  # checked here, so a typo fails when it is set
            raise ModelError(f"unknown fake model {target!r}: use one of {', '.join('fake/' + m for m in fake.MODELS)}")
        register()
        return model
    try:
        litellm.get_llm_provider(target)
    except Exception:
        broken = endpoint_registry.problem()
        raise ModelError(
            f"unknown model {target!r}: write it as provider/model (openai/gpt-4o-mini, "
            "anthropic/claude-3-5-haiku-latest, "
            f"ollama/llama3, fake/echo, local/smollm2) or define it with workbench.alias({target!r}, ...)"
            + (f" (the endpoints file did not load: {broken})" if broken else "")
        ) from None
    return model
