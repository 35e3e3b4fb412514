"""team.yaml: what the team gateway should hold (secrets, models, endpoints, budgets, prices), checked by hand.

    secrets:                       # provider keys, stored encrypted on the server
      - name: openai
        provider: openai
        api_key: os.environ/OPENAI_API_KEY    # read from the admin's environment when applying, never written here
      - name: smol-box
        provider: openai
        api_base: http://10.0.0.5:8000/v1     # a self-hosted OpenAI-compatible server (vLLM, transformers serve...)
    models:                        # a provider model behind a secret
      - {name: mini, secret: openai, model: gpt-4o-mini}
      - {name: smol, secret: smol-box, model: HuggingFaceTB/SmolLM2-135M-Instruct}
    endpoints:                     # what users call as team/<name>
      - {name: chat, models: [mini], fallbacks: [smol]}
      - {name: split, models: {mini: 0.9, smol: 0.1}}
    budgets:                       # USD per day | week | month; global, per endpoint or per user
      - {usd: 50, per: month}
      - {usd: 5, per: day, endpoint: chat}
      - {usd: 1, per: day, user: alice, action: reject}
    prices:                        # for self-hosted models litellm does not price (read by start-server.sh)
      HuggingFaceTB/SmolLM2-135M-Instruct: {input_per_1m: 1.0, output_per_1m: 2.0}

Every mistake is one ConfigError naming the file, the entry and the fix.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import ConfigError

__all__ = ["TeamSpec", "SecretSpec", "ModelSpec", "EndpointSpec", "BudgetSpec", "load_spec", "parse_spec",
           "PERIODS"]

PERIODS = {"day": "DAYS", "week": "WEEKS", "month": "MONTHS", "hour": "HOURS"}
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
_ENV_REF = re.compile(r"^os\.environ/([A-Za-z_][A-Za-z0-9_]*)$")
_NO_KEY = "none"  # an upstream that checks no key (the gateway still wants a value)


@dataclass(frozen=True)
class SecretSpec:
    name: str
    provider: str
    key_variable: str | None  # None: the upstream needs no key
    api_base: str | None = None

    def value(self, where: str) -> str:
        """The key from the admin's environment (never from the file)."""
        if self.key_variable is None:
            return _NO_KEY
        found = os.environ.get(self.key_variable)
        if not found:
            raise ConfigError(f"{where}: secret {self.name!r} reads its key from {self.key_variable}, which is not "
                              "set: "
                              f"export {self.key_variable}=... before `workbench team apply`")
        return found


@dataclass(frozen=True)
class ModelSpec:
    name: str
    secret: str
    model: str
    provider: str


@dataclass(frozen=True)
class EndpointSpec:
    name: str
    weights: dict[str, float]  # primary model -> weight
    fallbacks: tuple[str, ...] = ()


@dataclass(frozen=True)
class BudgetSpec:
    usd: float
    duration_unit: str  # DAYS, WEEKS, MONTHS, HOURS
    duration_value: int
    scope: str  # GLOBAL, ENDPOINT, USER
    target: str | None  # endpoint name or username
    action: str = "REJECT"

    @property
    def key(self) -> tuple[str, str | None, str, int]:
        """A budget is the same budget when it covers the same thing over the same period."""
        return (self.scope, self.target, self.duration_unit, self.duration_value)

    def describe(self) -> str:
        period = PERIODS_BACK.get(self.duration_unit, self.duration_unit.lower())
        per = period if self.duration_value == 1 else f"{self.duration_value} {period}s"
        whom = {"GLOBAL": "global", "ENDPOINT": f"endpoint {self.target}", "USER": f"user {self.target}"}[self.scope]
        return f"budget {whom}: ${self.usd:g} per {per} ({self.action.lower()})"


PERIODS_BACK = {v: k for k, v in PERIODS.items()}


@dataclass(frozen=True)
class TeamSpec:
    source: str
    secrets: tuple[SecretSpec, ...] = ()
    models: tuple[ModelSpec, ...] = ()
    endpoints: tuple[EndpointSpec, ...] = ()
    budgets: tuple[BudgetSpec, ...] = ()
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)  # model -> (input, output) USD per 1M


def load_spec(path: str | os.PathLike[str]) -> TeamSpec:
    import yaml  # type: ignore[import-untyped]

    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the team file {str(file)!r}: {exc.strerror}; "
                          "pass the path of your team.yaml") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{file}{where}: not valid YAML ({getattr(exc, 'problem', exc)}); fix the indentation "
                          "or quoting there") from None
    return parse_spec(data, str(file))


def _list(data: dict[str, Any], key: str, source: str) -> list[dict[str, Any]]:
    items = data.get(key) or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ConfigError(f"{source}: `{key}:` must be a list of mappings (`- name: ...`), got {items!r:.80}")
    return items


def _name(item: dict[str, Any], where: str) -> str:
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{where}: name {name!r} must be letters, digits, '_', '-' or '.', e.g. name: chat")
    return name


def _secret(item: dict[str, Any], where: str) -> SecretSpec:
    name = _name(item, where)
    if "api_key_value" in item or "value" in item:
        raise ConfigError(f"{where}: keys never go in the team file: write api_key: os.environ/NAME and export NAME")
    raw = item.get("api_key")
    variable = None
    if raw not in (None, "none", _NO_KEY):
        found = _ENV_REF.match(str(raw))
        if not found:
            raise ConfigError(f"{where}: api_key must be os.environ/NAME (the key is read from your environment, "
                              f"never stored in the file), got {'a literal value' if raw else repr(raw)}")
        variable = found.group(1)
    base = item.get("api_base")
    if base is not None and (not isinstance(base, str) or not base.startswith(("http://", "https://"))):
        raise ConfigError(f"{where}: api_base {base!r} must be an http(s) URL, e.g. http://10.0.0.5:8000/v1")
    provider = item.get("provider", "openai")
    if not isinstance(provider, str) or not provider:
        raise ConfigError(f"{where}: provider {provider!r} must be a provider name, e.g. provider: openai")
    return SecretSpec(name, provider, variable, base)


def _weights(raw: Any, where: str) -> dict[str, float]:
    if isinstance(raw, str):
        raw = [raw]
    if isinstance(raw, list):
        raw = {str(m): 1.0 for m in raw}
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{where}: models must be a list of model names or a mapping name: weight, "
                          "e.g. models: [mini] or models: {mini: 0.9, smol: 0.1}")
    weights = {}
    for model, weight in raw.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
            raise ConfigError(f"{where}: weight {weight!r} for {model!r} must be a number > 0")
        weights[str(model)] = float(weight)
    return weights


def _budget(item: dict[str, Any], where: str, endpoints: set[str]) -> BudgetSpec:
    usd = item.get("usd")
    if isinstance(usd, bool) or not isinstance(usd, int | float) or not usd > 0:
        raise ConfigError(f"{where}: usd {usd!r} must be an amount > 0 in USD, e.g. usd: 5")
    per = str(item.get("per", "day")).strip().lower()
    count, _, unit = per.rpartition(" ")
    unit = unit.rstrip("s")
    if unit not in PERIODS or (count and not count.isdigit()):
        raise ConfigError(f"{where}: per {item.get('per')!r} must be day, week or month (or e.g. '2 weeks')")
    targets = [k for k in ("endpoint", "user") if item.get(k)]
    if len(targets) > 1:
        raise ConfigError(f"{where}: a budget covers everything, one endpoint or one user: give endpoint: or user:, "
                          "not both")
    scope, target = ("GLOBAL", None) if not targets else (targets[0].upper(), str(item[targets[0]]))
    if scope == "ENDPOINT" and target not in endpoints:
        raise ConfigError(f"{where}: endpoint {target!r} is not among the file's endpoints "
                          f"({', '.join(sorted(endpoints))})")
    action = str(item.get("action", "reject")).upper()
    if action not in ("REJECT", "ALERT"):
        raise ConfigError(f"{where}: action {item.get('action')!r} must be reject (refuse calls) "
                          "or alert (webhook only)")
    return BudgetSpec(float(usd), PERIODS[unit], int(count or 1), scope, target, action)


def _prices(raw: Any, source: str) -> dict[str, tuple[float, float]]:
    if raw in (None, {}):
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: `prices:` must map model -> {{input_per_1m: ..., output_per_1m: ...}}")
    found = {}
    for model, price in raw.items():
        rates = price if isinstance(price, dict) else {}
        values = (rates.get("input_per_1m"), rates.get("output_per_1m"))
        if any(isinstance(v, bool) or not isinstance(v, int | float) or v < 0 for v in values):
            raise ConfigError(f"{source}: price of {model!r} must be {{input_per_1m: 1.0, output_per_1m: 2.0}} "
                              f"(USD per million tokens), got {price!r}")
        found[str(model)] = (float(values[0]), float(values[1]))  # type: ignore[arg-type]
    return found


def parse_spec(data: Any, source: str = "team.yaml") -> TeamSpec:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the team file must be a mapping with secrets:, models:, endpoints:, budgets:")
    unknown = sorted(set(data) - {"secrets", "models", "endpoints", "budgets", "prices"})
    if unknown:
        raise ConfigError(f"{source}: unknown section(s) {', '.join(unknown)}: "
                          "use secrets, models, endpoints, budgets, prices")
    secrets = tuple(_secret(item, f"{source} secrets[{i}]") for i, item in enumerate(_list(data, "secrets", source)))
    by_secret = {s.name: s for s in secrets}
    models = []
    for i, item in enumerate(_list(data, "models", source)):
        where = f"{source} models[{i}]"
        secret = item.get("secret")
        if secret not in by_secret:
            raise ConfigError(f"{where}: secret {secret!r} is not among the file's secrets "
                              f"({', '.join(by_secret) or 'none'})")
        model = item.get("model")
        if not isinstance(model, str) or not model:
            raise ConfigError(f"{where}: model {model!r} must be the provider's model name, e.g. model: gpt-4o-mini")
        provider = str(item.get("provider") or by_secret[secret].provider)
        models.append(ModelSpec(_name(item, where), str(secret), model, provider))
    known = {m.name for m in models}
    endpoints = []
    for i, item in enumerate(_list(data, "endpoints", source)):
        where = f"{source} endpoints[{i}]"
        weights = _weights(item.get("models"), where)
        fallbacks = item.get("fallbacks") or []
        fallbacks = [fallbacks] if isinstance(fallbacks, str) else list(fallbacks)
        for model in [*weights, *fallbacks]:
            if model not in known:
                raise ConfigError(f"{where}: model {model!r} is not among the file's models "
                                  f"({', '.join(sorted(known)) or 'none'})")
        endpoints.append(EndpointSpec(_name(item, where), weights, tuple(str(f) for f in fallbacks)))
    names = {e.name for e in endpoints}
    budgets = tuple(_budget(item, f"{source} budgets[{i}]", names)
                    for i, item in enumerate(_list(data, "budgets", source)))
    for kind, items in (("secret", secrets), ("model", models), ("endpoint", endpoints)):
        seen = [x.name for x in items]
        dupes = sorted({n for n in seen if seen.count(n) > 1})
        if dupes:
            raise ConfigError(f"{source}: {kind} {dupes[0]!r} is defined twice: keep one")
    keys = [b.key for b in budgets]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"{source}: two budgets cover the same scope over the same period: keep one")
    return TeamSpec(source, secrets, tuple(models), tuple(endpoints), budgets, _prices(data.get("prices"), source))
