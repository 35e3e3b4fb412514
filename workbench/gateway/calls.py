"""Turning what a user passes to complete() into a checked, ready-to-send call."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from workbench.config import settings
from workbench.errors import ConfigError, WorkbenchError
from workbench.gateway import endpoint_registry, models
from workbench.gateway.cache import cache_key
from workbench.gateway.endpoint_routes import CONNECTION_PARAMS, with_connection
from workbench.providers.local.names import adapter_identity
from workbench.secrets import remember_credentials, scrub_params

__all__ = ["PreparedCall", "prepare", "build_messages", "check_params"]

_ROLES = {"system", "user", "assistant", "tool", "developer", "function"}


@dataclass
class PreparedCall:
    model: str  # as asked (an alias or route name stays as written)
    chain: list[tuple[str, str | models.Route]]  # (name as asked, what it resolves to), primary first
    messages: list[dict[str, Any]]
    params: dict[str, Any]  # sent to litellm, credentials included
    tags: dict[str, str]
    use_cache: bool
    timeout: float | None
    key: str = ""
    recorded_params: dict[str, Any] = field(default_factory=dict)  # params without credentials

    @property
    def primary(self) -> str | models.Route:
        return self.chain[0][1]


def build_messages(prompt_or_messages: Any, system: str | None) -> list[dict[str, Any]]:
    if isinstance(prompt_or_messages, str):
        if not prompt_or_messages.strip():
            raise ConfigError("the prompt is empty: pass some text, e.g. complete('Say hello')")
        messages = [{"role": "user", "content": prompt_or_messages}]
    elif isinstance(prompt_or_messages, list | tuple):
        if not prompt_or_messages:
            raise ConfigError("messages=[] is empty: pass at least one {'role': 'user', 'content': ...}")
        messages = []
        for i, message in enumerate(prompt_or_messages):
            if not isinstance(message, dict) or "role" not in message or "content" not in message:
                raise ConfigError(
                    f"message {i} ({message!r:.80}) needs 'role' and 'content', "
                    "e.g. {'role': 'user', 'content': 'hi'}"
                )
            if message["role"] not in _ROLES:
                raise ConfigError(f"message {i} has role {message['role']!r}: use one of {sorted(_ROLES)}")
            messages.append(dict(message))
    else:
        raise ConfigError(
            f"prompt of type {type(prompt_or_messages).__name__} is not supported: pass a string or a list of messages"
        )
    if system is not None:
        if not isinstance(system, str):
            raise ConfigError(f"system={system!r} must be a string")
        messages = [{"role": "system", "content": system}] + [m for m in messages if m["role"] != "system"]
    return messages


def check_params(params: dict[str, Any]) -> None:
    """Raise ConfigError for a sampling setting no model would accept (temperature, max_tokens, seed, stop)."""
    temperature = params.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool) or not isinstance(temperature, int | float)
        or math.isnan(temperature) or not 0 <= temperature <= 2
    ):
        raise ConfigError(f"temperature={temperature!r} must be a number from 0 to 2, e.g. temperature=0.2")
    for name in ("max_tokens", "max_completion_tokens"):
        value = params.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise ConfigError(f"{name}={value!r} must be a whole number > 0, e.g. {name}=256")
    seed = params.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ConfigError(f"seed={seed!r} must be a whole number, e.g. seed=0")
    stop = params.get("stop")
    stop_ok = isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
    if stop is not None and not stop_ok:
        raise ConfigError(f"stop={stop!r} must be a string or a list of strings")


def _check_tags(tags: Any) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise ConfigError(f"tags={tags!r} must be a dict, e.g. tags={{'project': 'support'}}")
    clean = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not key.strip():
            raise ConfigError(f"tag key {key!r} must be a non-empty string, e.g. tags={{'project': 'support'}}")
        clean[key.strip()] = str(value)
    return clean


def _apply_pick(chain: list[tuple[str, str | models.Route]], tags: dict[str, str]) -> dict[str, str]:
    """A rollout's route chooses its variant here (see models.Route.pick); other routes let the Router choose."""
    name, target = chain[0]
    if not isinstance(target, models.Route) or target.pick is None:
        return tags
    model, extra = target.pick(tags)
    chain[0] = (name, model)
    return {**tags, **extra}


def prepare(
    prompt_or_messages: object,
    model: str | None,
    *,
    system: str | None,
    fallbacks: object,
    tags: object,
    cache: bool,
    timeout: float | None,
    params: dict[str, Any],
) -> PreparedCall:
    asked = model if model is not None else settings().default_model
    if isinstance(fallbacks, str):
        fallbacks = [fallbacks]
    elif fallbacks is not None and not isinstance(fallbacks, list | tuple):
        raise ConfigError(f"fallbacks={fallbacks!r:.80} must be a list of models, e.g. fallbacks=['local/smollm2']")
    if not isinstance(asked, str):
        models.validate_model(asked)  # one line naming the bad value
    names = [asked, *list(fallbacks or endpoint_registry.fallbacks_for(asked.strip()))]
    chain = [(models.validate_model(name), models.resolve(name.strip())) for name in names]
    messages = build_messages(prompt_or_messages, system)
    params = dict(params)
    remember_credentials(params)  # api_key=, secret headers: before anything can fail and quote them
    connection = {name: params.pop(name) for name in CONNECTION_PARAMS if params.get(name) is not None}
    check_params(params)
    clean_tags = _apply_pick(chain, _check_tags(tags))
    if connection:  # api_key=/api_base=/extra_headers= describe the model asked for, not its fallbacks
        chain[0] = (chain[0][0], with_connection(chain[0][0].strip(), chain[0][1], connection))
    if not isinstance(cache, bool):  # cache='no' would be truthy
        raise ConfigError(f"cache={cache!r} must be True or False, e.g. cache=False to skip the cache")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0):
        raise ConfigError(f"timeout={timeout!r} must be a number of seconds > 0, e.g. timeout=30")
    call = PreparedCall(
        model=asked.strip(),
        chain=chain,
        messages=messages,
        params=dict(params),
        tags=clean_tags,
        use_cache=bool(cache),
        timeout=timeout if timeout is not None else settings().timeout_s,
        recorded_params=scrub_params(params),
    )
    if not call.use_cache:  # no key to build (resolving an adapter for one would ask its registry a second time)
        return call
    primary = call.primary
    identity = primary.cache_identity() if isinstance(primary, models.Route) else primary
    headers = {**(connection.get("headers") or {}), **(connection.get("extra_headers") or {})}
    try:
        identity = adapter_identity(identity)  # `+adapter:NAME` (latest) keys on the version it stands for now
    except WorkbenchError:  # no such adapter: the provider says so when called (and a fallback may answer)
        return call  # no key: not cached
    call.key = cache_key(identity, messages, call.recorded_params, headers)
    return call
