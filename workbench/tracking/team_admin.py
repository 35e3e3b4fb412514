"""`workbench team apply|status`: the team gateway's secrets, models, endpoints and budgets, over its REST API.

MLflow 3.17 has no public client for the gateway's admin calls, only the server's REST routes
(`/api/3.0/mlflow/gateway/...`), so we speak them directly, with bounded timeouts and the admin's basic-auth
login from MLFLOW_TRACKING_USERNAME/PASSWORD. `apply` is idempotent: it reads what the server holds, changes
only what differs from the team file, and says what it changed ("no changes" the second time).

Keys are read from the admin's environment when applying and sent once to the server, which stores them
encrypted; the server only ever shows them masked (`sk-...3456`), which is how a changed key is noticed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import ConfigError
from workbench.gateway import team
from workbench.tracking.price_map import bundled_map_path
from workbench.tracking.team_spec import BudgetSpec, EndpointSpec, TeamSpec

__all__ = ["apply", "status", "Applied", "unpriced_models"]

_API = "/api/3.0/mlflow/gateway"


@dataclass
class Applied:
    changes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(self.changes) if self.changes else "no changes"


def _call(method: str, path: str, payload: dict[str, Any] | None = None, **params: str) -> dict[str, Any]:
    return team.request(method, _API + path, payload, params=params or None)


def _mask(value: str) -> str:
    """What MLflow shows for a stored key (mlflow.utils.crypto._mask_string_value)."""
    return "***" if len(value) < 8 else f"{value[:3]}...{value[-4:]}"


def _apply_secrets(spec: TeamSpec, applied: Applied, rotate: bool) -> dict[str, str]:
    held = {s["secret_name"]: s for s in _call("GET", "/secrets/list").get("secrets", [])}
    ids = {}
    for secret in spec.secrets:
        value = secret.value(f"{spec.source} secret {secret.name}")
        auth = {"api_base": secret.api_base} if secret.api_base else {}
        found = held.get(secret.name)
        if found is None:
            payload = {"secret_name": secret.name, "secret_value": {"api_key": value}, "provider": secret.provider}
            created = _call("POST", "/secrets/create", {**payload, **({"auth_config": auth} if auth else {})})
            ids[secret.name] = created["secret"]["secret_id"]
            applied.changes.append(f"created secret {secret.name} ({secret.provider}"
                                   + (f", {secret.api_base}" if secret.api_base else "") + ")")
            continue
        ids[secret.name] = found["secret_id"]
        if (found.get("provider") or "") != secret.provider:
            raise ConfigError(f"{spec.source}: secret {secret.name!r} is a {found.get('provider')!r} secret on the "
                              "server; "
                              f"the file says {secret.provider!r}: give the new one another name")
        key_changed = rotate or (found.get("masked_values") or {}).get("api_key") != _mask(value)
        base_changed = (found.get("auth_config") or {}).get("api_base") != secret.api_base
        if key_changed or base_changed:
            update: dict[str, Any] = {"secret_id": found["secret_id"], "secret_value": {"api_key": value}}
            if base_changed:
                update["auth_config"] = auth or {"api_base": ""}
            _call("POST", "/secrets/update", update)
            what = " and ".join(w for w, c in (("key", key_changed), ("api_base", base_changed)) if c)
            applied.changes.append(f"updated secret {secret.name} ({what})")
    return ids


def _apply_models(spec: TeamSpec, applied: Applied, secret_ids: dict[str, str]) -> dict[str, str]:
    held = {m["name"]: m for m in _call("GET", "/model-definitions/list").get("model_definitions", [])}
    ids = {}
    for model in spec.models:
        wanted = {"secret_id": secret_ids[model.secret], "provider": model.provider, "model_name": model.model}
        found = held.get(model.name)
        if found is None:
            created = _call("POST", "/model-definitions/create", {"name": model.name, **wanted})
            ids[model.name] = created["model_definition"]["model_definition_id"]
            applied.changes.append(f"created model {model.name} -> {model.provider}/{model.model}")
            continue
        ids[model.name] = found["model_definition_id"]
        differs = [k for k, v in wanted.items() if found.get(k) != v]
        if differs:
            _call("POST", "/model-definitions/update", {"model_definition_id": found["model_definition_id"], **wanted})
            applied.changes.append(f"updated model {model.name} ({', '.join(differs)})")
    return ids


def _model_configs(endpoint: EndpointSpec, model_ids: dict[str, str]) -> list[dict[str, Any]]:
    configs: list[dict[str, Any]] = [
        {"model_definition_id": model_ids[name], "linkage_type": "PRIMARY", "weight": weight}
        for name, weight in endpoint.weights.items()]
    configs += [{"model_definition_id": model_ids[name], "linkage_type": "FALLBACK", "weight": 1.0, "fallback_order": n}
                for n, name in enumerate(endpoint.fallbacks, 1)]
    return configs


def _config_key(configs: list[dict[str, Any]]) -> set[tuple[str, str, float, int]]:
    return {(c.get("model_definition_id", ""), c.get("linkage_type", ""), round(float(c.get("weight") or 0.0), 6),
             int(c.get("fallback_order") or 0)) for c in configs}


def _endpoint_payload(endpoint: EndpointSpec, model_ids: dict[str, str]) -> dict[str, Any]:
    payload: dict[str, Any] = {"model_configs": _model_configs(endpoint, model_ids),
                               "routing_strategy": "REQUEST_BASED_TRAFFIC_SPLIT"}
    if endpoint.fallbacks:
        payload["fallback_config"] = {"strategy": "SEQUENTIAL", "max_attempts": len(endpoint.fallbacks) + 1}
    return payload


def _apply_endpoints(spec: TeamSpec, applied: Applied, model_ids: dict[str, str]) -> dict[str, str]:
    held = {e["name"]: e for e in _call("GET", "/endpoints/list").get("endpoints", [])}
    ids = {}
    for endpoint in spec.endpoints:
        payload = _endpoint_payload(endpoint, model_ids)
        found = held.get(endpoint.name)
        shape = ", ".join([f"{m} {w:g}" for m, w in endpoint.weights.items()]
                          + [f"fallback {f}" for f in endpoint.fallbacks])
        if found is None:
            created = _call("POST", "/endpoints/create", {"name": endpoint.name, **payload})
            ids[endpoint.name] = created["endpoint"]["endpoint_id"]
            applied.changes.append(f"created endpoint {endpoint.name} ({shape})")
            continue
        ids[endpoint.name] = found["endpoint_id"]
        held_configs = found.get("model_mappings") or found.get("model_configs") or []
        same_models = _config_key(held_configs) == _config_key(payload["model_configs"])
        held_attempts = int((found.get("fallback_config") or {}).get("max_attempts") or 0)
        wanted_attempts = int(payload.get("fallback_config", {}).get("max_attempts") or 0)
        if not same_models or (wanted_attempts and held_attempts != wanted_attempts):
            _call("POST", "/endpoints/update", {"endpoint_id": found["endpoint_id"], **payload})
            applied.changes.append(f"updated endpoint {endpoint.name} ({shape})")
    return ids


def _budget_key(policy: dict[str, Any], names: dict[str, str]) -> tuple[str, str | None, str, int]:
    scope = str(policy.get("target_scope", "GLOBAL"))
    target = policy.get("target_value") or None
    if scope == "ENDPOINT" and target:
        target = names.get(target, target)
    duration = policy.get("duration") or {}
    return (scope, target, str(duration.get("unit", "DAYS")), int(duration.get("value") or 1))


def _apply_budgets(spec: TeamSpec, applied: Applied, endpoint_ids: dict[str, str]) -> None:
    names = {v: k for k, v in endpoint_ids.items()}
    held = {_budget_key(p, names): p for p in _call("GET", "/budgets/list").get("budget_policies", [])}
    for budget in spec.budgets:
        found = held.get(budget.key)
        if found is None:
            _call("POST", "/budgets/create", _budget_payload(budget, endpoint_ids))
            applied.changes.append(f"created {budget.describe()}")
            continue
        amount_changed = abs(float(found.get("budget_amount") or 0.0) - budget.usd) > 1e-12
        if amount_changed or found.get("budget_action") != budget.action:
            _call("POST", "/budgets/update", {"budget_policy_id": found["budget_policy_id"],
                                              "budget_amount": budget.usd,
                                              "budget_action": budget.action})
            applied.changes.append(f"updated {budget.describe()}")


def _budget_payload(budget: BudgetSpec, endpoint_ids: dict[str, str]) -> dict[str, Any]:
    payload: dict[str, Any] = {"budget_unit": "USD", "budget_amount": budget.usd,
                               "duration": {"unit": budget.duration_unit, "value": budget.duration_value},
                               "target_scope": budget.scope, "budget_action": budget.action}
    if budget.scope == "ENDPOINT":
        payload["target_value"] = endpoint_ids[str(budget.target)]
    elif budget.scope == "USER":
        payload["target_value"] = budget.target
    return payload


def apply(spec: TeamSpec, *, rotate_keys: bool = False) -> Applied:
    """Make the team gateway hold what `spec` says; returns what changed. Secrets, models, endpoints and
    budgets on the server that the file does not name are left alone."""
    applied = Applied()
    secret_ids = _apply_secrets(spec, applied, rotate_keys)
    model_ids = _apply_models(spec, applied, secret_ids)
    endpoint_ids = _apply_endpoints(spec, applied, model_ids)
    _apply_budgets(spec, applied, endpoint_ids)
    return applied


def unpriced_models(models: list[dict[str, Any]], prices: dict[str, tuple[float, float]] | None = None) -> list[str]:
    """Model names the gateway cannot price from litellm's bundled map nor from the team file's prices."""
    known = set(json.loads(bundled_map_path().read_text())) | set(prices or {})
    found = []
    for model in models:
        name, provider = str(model.get("model_name", "")), str(model.get("provider", ""))
        if name not in known and f"{provider}/{name}" not in known:
            found.append(name)
    return sorted(set(found))


def status(spec: TeamSpec | None = None) -> str:
    """The endpoints (models, fallbacks, weights) and every budget's current spend, as text; warns loudly
    about models the gateway cannot price (their calls cost $0 there, so budgets never trip on them)."""
    models = {m["model_definition_id"]: m for m in _call("GET", "/model-definitions/list").get("model_definitions", [])}
    lines = [f"team gateway at {team.server_url()}{team.GATEWAY_PATH}", "endpoints:"]
    used = []
    for endpoint in _call("GET", "/endpoints/list").get("endpoints", []):
        parts = []
        mappings = endpoint.get("model_mappings") or []
        order = lambda m: (m.get("linkage_type") != "PRIMARY", int(m.get("fallback_order") or 0))  # noqa: E731
        for mapping in sorted(mappings, key=order):
            model = models.get(mapping.get("model_definition_id"), {})
            used.append(model)
            weight = float(mapping.get("weight") or 1)
            role = "fallback" if mapping.get("linkage_type") == "FALLBACK" else f"weight {weight:g}"
            target = f"{model.get('provider', '?')}/{model.get('model_name', '?')}"
            parts.append(f"{model.get('name', '?')} = {target} ({role})")
        lines.append(f"  team/{endpoint['name']}: " + ("; ".join(parts) or "no models"))
    if len(lines) == 2:
        lines.append("  (none yet: `workbench team apply team.yaml`)")
    lines.append("budgets:")
    found = team.budgets()
    for budget in found:
        whom = {"global": "everyone", "endpoint": f"endpoint {budget.target}", "user": f"user {budget.target}"}.get(
            budget.scope, f"{budget.scope} {budget.target or ''}")
        lines.append(f"  {whom}: ${budget.spent_usd:.6f} of ${budget.usd:g} per {budget.period} spent "
                     f"({budget.action.lower()}; resets {budget.resets_at or 'when the window starts'})")
    if not found:
        lines.append("  (none)")
    unpriced = unpriced_models(used, spec.prices if spec else None)
    for name in unpriced:
        lines.append(f"WARNING: model {name} has no price the gateway knows: its calls cost $0, so budgets NEVER trip "
                     "on it. Price it in the team file's `prices:` and start the server with "
                     "MLFLOW_GATEWAY_PRICES=team.yaml (mlflow/README.md)"
                     + (" - or, if the server already serves that price map, ignore this" if spec is None else ""))
    return "\n".join(lines)
