"""Endpoints as routes: each name of the endpoints file (and each call given api_base=/api_key=) becomes a Route
whose deployments carry their own server, key variable and litellm params.

Keys are read from the environment at call time (a key exported after the file was loaded works), remembered for
redaction, and never part of a cache key, a ledger row or a trace. An endpoint with an api_base and no key gets a
placeholder key: a server that checks none (transformers serve, vLLM, Ollama, LM Studio) accepts it, and the
provider's own key (OPENAI_API_KEY) is never sent to a server it was not paired with.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field, replace
from typing import Any

from workbench.errors import ConfigError, MissingKeyError, ProviderError
from workbench.gateway.endpoints import Deployment, env_reference
from workbench.gateway.retry import classify
from workbench.gateway.route import Route
from workbench.providers.registry import CUSTOM_PROVIDERS, quiet_litellm
from workbench.secrets import remember_credentials, remember_secret

__all__ = ["EndpointRoute", "PLACEHOLDER_KEY", "CONNECTION_PARAMS", "from_deployments", "with_connection"]

PLACEHOLDER_KEY = "workbench-no-key"
CONNECTION_PARAMS = ("api_key", "api_base", "extra_headers", "headers")


@dataclass
class EndpointRoute(Route):
    """A route whose deployments are endpoints (a server, a key variable, params), not bare model strings."""

    deployments: tuple[Deployment, ...] = ()
    identity: str = ""  # the cache identity: the endpoint's name, never its api_base or key
    overrides: dict[str, Any] = field(default_factory=dict, repr=False)  # api_key/api_base/headers given to the call
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _built: tuple[int, Any] | None = field(default=None, repr=False)

    def router(self) -> _Caller:
        return _Caller(self)

    def cache_identity(self) -> str:
        return self.identity


def from_deployments(name: str, deployments: tuple[Deployment, ...]) -> EndpointRoute:
    weights = {d.label: float(_weight(d)) for d in deployments}
    return EndpointRoute(name=name, weights=weights, deployments=deployments, identity=f"endpoint:{name}")


def _weight(deployment: Deployment) -> float:
    # LiteLLM's simple-shuffle: weight, else rpm, else tpm, else equal
    for key in ("weight", "rpm", "tpm"):
        value = deployment.params.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return 1.0


def _check_connection(connection: dict[str, Any]) -> dict[str, Any]:
    key = connection.get("api_key")
    if key is not None and (not isinstance(key, str) or not key.strip()):
        # never echo it: it may be a real key of another type
        raise ConfigError("api_key= must be a non-empty string (the key itself, e.g. api_key=os.environ['MY_KEY'])")
    base = connection.get("api_base")
    if base is not None and (not isinstance(base, str) or not base.startswith(("http://", "https://"))):
        raise ConfigError(f"api_base={base!r} is not a URL: pass the server's address, e.g. "
                          "api_base='http://127.0.0.1:8000/v1'")
    for name in ("extra_headers", "headers"):
        headers = connection.get(name)
        if headers is not None and (not isinstance(headers, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in headers.items())):
            raise ConfigError(f"{name}= must be a dict of header name -> text, e.g. {name}={{'X-Team': 'support'}}")
    remember_credentials(connection)  # the key and Authorization-like headers join the redaction set
    return connection


def with_connection(name: str, target: str | Route, connection: dict[str, Any]) -> EndpointRoute:
    """The call's primary model, sent with api_key/api_base/extra_headers given to complete().

    An endpoint keeps its cache identity (its name: a new api_base for it does not split the cache); a model
    string sent to another server is another model, so that server is part of its identity."""
    connection = _check_connection(dict(connection))
    if isinstance(target, EndpointRoute):
        return replace(target, overrides={**target.overrides, **connection}, _lock=threading.Lock(), _built=None)
    if isinstance(target, Route):
        deployments = tuple(Deployment(name=target.name, label=model, model=model, params={"weight": weight})
                            for model, weight in target.weights.items())
        identity = target.cache_identity()
    else:
        deployments = (Deployment(name=target, label=target, model=target),)
        identity = target
    if connection.get("api_base"):
        identity += "@" + connection["api_base"]
    route = from_deployments(name, deployments)
    route.identity, route.overrides = identity, connection
    return route


def _from_env(deployment: Deployment, key: str, value: Any) -> Any:
    name = env_reference(value)
    if name is None:
        return value
    found = os.environ.get(name)
    if not found:
        raise ConfigError(f"endpoint {deployment.name!r} ({deployment.source}:{deployment.line}) reads {key} from "
                          f"os.environ/{name}, which is not set: export {name}")
    return found


def _key_for(deployment: Deployment, api_base: str | None, overrides: dict[str, Any]) -> str | None:
    if overrides.get("api_key"):
        return str(overrides["api_key"])
    if deployment.api_key_env:
        key = os.environ.get(deployment.api_key_env)
        if not key:
            raise MissingKeyError(
                f"endpoint {deployment.name!r} needs {deployment.api_key_env} (its api_key: "
                f"os.environ/{deployment.api_key_env} in {deployment.source}): set it in the environment or a "
                ".env file",
                variables=(deployment.api_key_env,),
            )
        return key
    if api_base:
        return PLACEHOLDER_KEY
    return None  # the provider's own variable, as litellm reads it (checked below)


def _check_provider_key(deployment: Deployment) -> None:
    if deployment.model.split("/", 1)[0] in CUSTOM_PROVIDERS:
        return
    try:
        missing = tuple(quiet_litellm().validate_environment(deployment.model).get("missing_keys") or ())
    except Exception:  # litellm cannot tell: let the provider answer for itself
        return
    if missing:
        raise MissingKeyError(
            f"endpoint {deployment.name!r} ({deployment.model}) needs {', '.join(missing)}: set it, or give the "
            f"entry api_key: os.environ/NAME", variables=missing)


def _litellm_params(deployment: Deployment, overrides: dict[str, Any]) -> dict[str, Any]:
    """What litellm is sent for this deployment now: env references read, the key chosen, nothing unresolved."""
    params: dict[str, Any] = {"model": deployment.model, "max_retries": 0}  # retries are the gateway's, one per attempt
    for key, value in deployment.params.items():
        if isinstance(value, dict):
            value = {k: _from_env(deployment, f"{key}.{k}", v) for k, v in value.items()}
        params[key] = _from_env(deployment, key, value)
    api_base: Any = overrides.get("api_base") or _from_env(deployment, "api_base", deployment.api_base)
    if api_base:
        params["api_base"] = api_base
    api_key = _key_for(deployment, api_base, overrides)
    if api_key is None:
        _check_provider_key(deployment)
    else:
        remember_secret(api_key)
        params["api_key"] = api_key
    for name in ("extra_headers", "headers"):
        if overrides.get(name):
            params[name] = {**(params.get(name) or {}), **overrides[name]}
    return {k: v for k, v in params.items() if v is not None}


def _auth_failure(route: EndpointRoute, exc: Exception) -> ProviderError:
    """A 401/403: no retry helps; say which variable holds the key this server refused (or that it needs one)."""
    status = getattr(exc, "status_code", None)
    detail = classify(exc).message
    where = route.overrides.get("api_base") or ", ".join(sorted({d.where for d in route.deployments}))
    variables = sorted({d.api_key_env for d in route.deployments if d.api_key_env})
    if route.overrides.get("api_key"):
        fix = "the api_key= passed to this call was refused: pass a key this server accepts"
    elif variables:
        fix = (f"set {' or '.join(variables)} to a key this server accepts "
               f"(the entry's api_key: os.environ/{variables[0]})")
    elif any(d.api_base for d in route.deployments):
        fix = (f"this server wants a key: add api_key: os.environ/NAME to the {route.name!r} entry of "
               f"{route.deployments[0].source or 'your endpoints file'} and export NAME (or pass api_key=)")
    else:
        fix = "check the provider's key variable (e.g. OPENAI_API_KEY)"
    return ProviderError(f"{route.name} at {where} answered {status} ({detail}): {fix}; not retried")


class _Caller:
    """What `Route.router()` returns for an endpoint: `.completion(model=..., **kwargs)` like a litellm Router.

    One deployment is one litellm.completion (no Router: ~15 ms saved per call); several go through a litellm
    Router with simple-shuffle (weights, else rpm/tpm), no retries, no cooldowns, like Route."""

    def __init__(self, route: EndpointRoute) -> None:
        self.route = route

    def completion(self, *, model: str, **kwargs: Any) -> Any:
        litellm = quiet_litellm()  # our providers registered: an endpoint may be a new name for fake/ or local/
        route = self.route
        resolved = [(d, _litellm_params(d, route.overrides)) for d in route.deployments]
        declared = [p["timeout"] for _, p in resolved if isinstance(p.get("timeout"), int | float)]
        if declared and (kwargs.get("timeout") is None or kwargs["timeout"] >= max(declared)):
            kwargs.pop("timeout", None)  # the shorter of the file's timeout and the call's wins
        try:
            if len(resolved) == 1:
                deployment, params = resolved[0]
                for own in ("weight", "rpm", "tpm"):
                    params.pop(own, None)
                result = litellm.completion(**{**params, **kwargs})
                hidden = getattr(result, "_hidden_params", None)
                if isinstance(hidden, dict):
                    hidden["model_id"] = deployment.label
                return result
            return self._router(resolved).completion(model=route.name, **kwargs)
        except Exception as exc:
            if getattr(exc, "status_code", None) in (401, 403):
                raise _auth_failure(route, exc) from None
            raise

    def _router(self, resolved: list[tuple[Deployment, dict[str, Any]]]) -> Any:
        route = self.route
        fingerprint = hash(repr([sorted(p.items(), key=lambda kv: kv[0]) for _, p in resolved]))
        with route._lock:
            if route._built is None or route._built[0] != fingerprint:
                from litellm import Router

                deployments = [
                    {"model_name": route.name, "litellm_params": {**params, "weight": route.weights[d.label]},
                     "model_info": {"id": d.label}}
                    for d, params in resolved
                ]
                router = Router(model_list=deployments, routing_strategy="simple-shuffle", num_retries=0,
                                disable_cooldowns=True, set_verbose=False)
                route._built = (fingerprint, router)
            return route._built[1]
