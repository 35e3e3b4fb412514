"""`team/<endpoint>`: calls through the team's MLflow AI Gateway, with the caller's MLflow credentials.

The team gateway lives inside the team's tracking server (WORKBENCH_TRACKING_URI): an OpenAI-compatible
route at `<server>/gateway/mlflow/v1` where the model is the endpoint's name. Provider keys stay on the
server; the client sends only the user's MLflow login, in the `X-MLflow-Authorization` header (on the
gateway's routes `Authorization: Bearer` is left for the upstream provider). The OpenAI SDK under litellm
retries a 429 twice by default: a budget refusal must be final, so `max_retries=0`.

Also here: plain REST reads of the team server any user may make (the endpoints list, the budgets and
their current spend), over urllib with bounded timeouts, so this floor imports no MLflow.
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from workbench.config import settings
from workbench.errors import (
    AccessDenied,
    BudgetExceeded,
    ConfigError,
    MissingKeyError,
    ModelError,
    TeamServerError,
    WorkbenchError,
)
from workbench.identity import user
from workbench.secrets import redact

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "PREFIX", "CREDENTIAL_VARIABLES", "is_team", "endpoint_of", "check_model", "server_url", "auth_header",
    "litellm_kwargs", "convert", "gateway_traces_url", "request", "endpoints", "budgets", "spend", "user_spend",
    "Budget", "describe_period",
]

PREFIX = "team/"
CREDENTIAL_VARIABLES = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
GATEWAY_PATH = "/gateway/mlflow/v1"
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")  # what MLflow accepts as an endpoint name
_TIMEOUT_S = 10.0  # admin and listing calls: never MLflow's minutes of HTTP retries
_BUDGET_TEXT = re.compile(
    r"Limit: \$(?P<limit>[0-9.,]+) USD per (?P<period>[^.]+)\. Budget resets at (?P<reset>\S+?)\.")


def is_team(model: object) -> bool:
    return isinstance(model, str) and model.startswith(PREFIX)


def endpoint_of(model: str) -> str:
    return model[len(PREFIX):]


def check_model(model: str) -> str:
    """Raise ModelError unless `model` is team/<a valid endpoint name>."""
    name = endpoint_of(model)
    if not name or not _NAME.match(name):
        raise ModelError(f"{model!r} names no team endpoint: write team/<endpoint>, e.g. team/chat "
                         "(`%llm models` lists the team's endpoints)")
    return model


def server_url() -> str:
    """The team server's base URL: the tracking URI, which must be an http(s) MLflow server."""
    uri = settings().effective_tracking_uri
    if not uri.startswith(("http://", "https://")):
        raise ConfigError(f"team/ endpoints need the team's MLflow server, but the tracking store is {redact(uri)!r}: "
                          "set WORKBENCH_TRACKING_URI=http://<team-server>:5000")
    return uri.rstrip("/")


def _credentials() -> tuple[str, str] | None:
    name, password = (os.environ.get(v) or "" for v in CREDENTIAL_VARIABLES)
    return (name, password) if name and password else None


def _basic(pair: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(f"{pair[0]}:{pair[1]}".encode()).decode()


def auth_header() -> dict[str, str]:
    """The gateway's login header for this user, or {} when no MLflow credentials are set."""
    pair = _credentials()
    return {"X-MLflow-Authorization": _basic(pair)} if pair else {}


def litellm_kwargs(model: str) -> dict[str, Any]:
    """What litellm needs to call team/<endpoint>: the OpenAI route of the gateway, no retries of ours."""
    check_model(model)
    return {
        "model": "openai/" + endpoint_of(model),
        "api_base": server_url() + GATEWAY_PATH,
        # the provider key lives on the server; the OpenAI client insists on some value
        "api_key": "unused-the-team-gateway-holds-the-keys",
        "extra_headers": auth_header(),
        "max_retries": 0,
    }


_trace_links: dict[tuple[str, str], str | None] = {}


def gateway_traces_url(model: str) -> str | None:
    """The MLflow UI page of the traces the gateway keeps for this endpoint (its experiment `gateway/<endpoint>`),
    looked up once per endpoint and server; None when it cannot be read (our trace then names the endpoint only)."""
    try:
        key = (server_url(), endpoint_of(model))
    except WorkbenchError:
        return None
    if key not in _trace_links:
        try:
            found = request("GET", "/api/2.0/mlflow/experiments/get-by-name",
                            params={"experiment_name": f"gateway/{key[1]}"}, timeout_s=3.0)
            _trace_links[key] = f"{key[0]}/#/experiments/{found['experiment']['experiment_id']}/traces"
        except (WorkbenchError, KeyError):
            _trace_links[key] = None
    return _trace_links[key]


# --- errors -------------------------------------------------------------------------------------------


def _body_text(exc: BaseException) -> str:
    """The gateway's own words: litellm keeps the HTTP body in .body / .response, not in str(exc)."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        detail = body.get("detail", body)
        if isinstance(detail, dict):
            detail = detail.get("message") or detail.get("detail") or json.dumps(detail)
        return str(detail)
    if body:
        return str(body)
    response = getattr(exc, "response", None)
    try:
        return str(response.text) if response is not None else str(exc)
    except Exception:  # a response without a readable body
        return str(exc)


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def convert(exc: BaseException, model: str) -> BaseException:
    """Our one-line error for what the gateway said, or `exc` unchanged when it is an ordinary failure."""
    if isinstance(exc, WorkbenchError):
        return exc
    status, text = _status(exc), _body_text(exc)
    name, who = endpoint_of(model), user()
    if status == 429 and "Budget limit exceeded" in text:
        return _budget_refusal(model, text)
    if status == 404 or (status == 403 and not _listed(name)):  # with basic auth an unknown endpoint is a 403
        return ModelError(f"the team gateway has no endpoint {name!r}: `%llm models` lists the team's endpoints "
                          f"(or ask your admin to add it with `workbench team apply`)")
    if status == 401:
        if _credentials() is None:
            return MissingKeyError(f"{model} needs your MLflow login for the team server: set MLFLOW_TRACKING_USERNAME "
                                   "and MLFLOW_TRACKING_PASSWORD (in the environment or .env)",
                                   variables=CREDENTIAL_VARIABLES)
        return MissingKeyError(f"the team server refused the login of {who!r} (401): check MLFLOW_TRACKING_PASSWORD",
                               variables=("MLFLOW_TRACKING_PASSWORD",))
    if status == 403:
        return AccessDenied(f"{who!r} may not use the team endpoint {name!r} (403): ask your team admin for USE "
                            "permission on it")
    return exc


def _listed(name: str) -> bool:
    """Whether this user's endpoint list names `name` (True when the list cannot be read: say 403 as it is)."""
    try:
        return name in endpoints(timeout_s=3.0)
    except WorkbenchError:
        return True


def _budget_refusal(model: str, text: str) -> BudgetExceeded:
    found = _BUDGET_TEXT.search(text)
    limit_text, period, reset = (found["limit"], found["period"], found["reset"]) if found else ("?", "period", "?")
    limit = float(limit_text.replace(",", "")) if found else 0.0
    spent = 0.0
    scope = "a team budget"
    try:  # the message rounds to cents ($0.00): the policy itself says the real amount (a bounded read)
        for budget in budgets(timeout_s=3.0):
            applies = budget.scope == "global" or (budget.scope == "user" and budget.target == user()) or (
                budget.scope == "endpoint" and budget.target == endpoint_of(model))
            if applies and budget.action == "REJECT" and budget.spent_usd >= budget.usd:
                limit, spent, period = budget.usd, budget.spent_usd, budget.period
                scope = {"global": "the team's global budget", "user": f"your budget ({user()})",
                         "endpoint": f"the budget of endpoint {endpoint_of(model)}"}[budget.scope]
                break
    except WorkbenchError:
        pass  # the gateway's own text is enough to say what happened
    return BudgetExceeded(
        f"{model} refused by {scope}: limit ${_usd(limit)} per {period}, resets at {_when(reset)}; "
        "not retried - ask your team admin to raise it, or name another model yourself",
        budget_usd=limit, spent_usd=spent,
    )


def _usd(amount: float) -> str:
    return f"{amount:.2f}" if amount >= 0.01 or amount == 0 else f"{amount:.6f}".rstrip("0")


def _when(stamp: str) -> str:
    try:
        moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return stamp
    return moment.strftime("%Y-%m-%d %H:%M UTC")


# --- REST reads ---------------------------------------------------------------------------------------


def request(method: str, path: str, payload: dict[str, Any] | None = None, *, params: dict[str, str] | None = None,
            login: tuple[str, str] | None = None, base: str | None = None,
            timeout_s: float = _TIMEOUT_S) -> dict[str, Any]:
    """One JSON call to the team server (basic auth from MLflow's variables unless `login` is given).

    Errors become one line: TeamServerError (unreachable, 4xx/5xx), MissingKeyError (401), AccessDenied (403).
    """
    url = (base or server_url()).rstrip("/") + path
    if params:
        url += "?" + urllib.parse.urlencode(params)
    data = None if payload is None else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    pair = login or _credentials()
    if pair:
        headers["Authorization"] = _basic(pair)
    call = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 - http(s) server URL
    try:
        with urllib.request.urlopen(call, timeout=timeout_s) as answer:  # noqa: S310 - checked by server_url()
            raw = answer.read()
    except urllib.error.HTTPError as exc:
        detail = redact(exc.read().decode(errors="replace"))[:300]
        if exc.code == 401:
            raise MissingKeyError(f"the team server at {redact(url.split('/api/')[0])} asks for a login (401): set "
                                  "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD",
                                  variables=CREDENTIAL_VARIABLES) from None
        if exc.code == 403:
            raise AccessDenied(f"{(pair or ('anonymous',))[0]!r} may not {method} {path} on the team server (403): "
                               "an admin login is needed for this") from None
        raise TeamServerError(f"{method} {path} on the team server failed with HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TeamServerError(f"the team server {redact(base or server_url())} did not answer {method} {path} within "
                              f"{timeout_s:g} s ({reason}): is it running? check WORKBENCH_TRACKING_URI") from None
    return json.loads(raw) if raw.strip() else {}


def endpoints(timeout_s: float = _TIMEOUT_S) -> list[str]:
    """Names of the endpoints this user can call (the gateway's own OpenAI-style model list)."""
    url = server_url() + GATEWAY_PATH + "/models"
    call = urllib.request.Request(url, headers={"Accept": "application/json", **auth_header()})  # noqa: S310
    try:
        with urllib.request.urlopen(call, timeout=timeout_s) as answer:  # noqa: S310 - checked by server_url()
            found = json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        raise convert(_HTTPStatus(exc.code, exc.read().decode(errors="replace")), PREFIX + "*") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise TeamServerError(f"the team server {redact(server_url())} did not answer within {timeout_s:g} s "
                              f"({getattr(exc, 'reason', exc)}): is it running? check WORKBENCH_TRACKING_URI") from None
    return sorted(str(item.get("id")) for item in found.get("data", []) if item.get("id"))


class _HTTPStatus(Exception):
    def __init__(self, status_code: int, body: str) -> None:
        super().__init__(body)
        self.status_code, self.body = status_code, body


@dataclass(frozen=True)
class Budget:
    """One budget policy of the team gateway with its current window."""

    policy_id: str
    scope: str  # global | endpoint | user | workspace
    target: str | None  # endpoint name or username
    usd: float
    period: str  # "1 day", "1 week"...
    action: str  # REJECT | ALERT
    spent_usd: float
    resets_at: str | None  # ISO time, UTC


def describe_period(duration: dict[str, Any]) -> str:
    value, unit = int(duration.get("value") or 1), str(duration.get("unit") or "DAYS").lower()
    return f"{value} {unit.rstrip('s') if value == 1 else unit}"


def budgets(timeout_s: float = _TIMEOUT_S) -> list[Budget]:
    """Every budget policy with its current spend (readable by any logged-in user)."""
    policies = request("GET", "/api/3.0/mlflow/gateway/budgets/list", timeout_s=timeout_s).get("budget_policies", [])
    windows = {w["budget_policy_id"]: w for w in
               request("GET", "/api/3.0/mlflow/gateway/budgets/windows", timeout_s=timeout_s).get("windows", [])}
    names: dict[str, str] = {}
    if any(p.get("target_scope") == "ENDPOINT" for p in policies):
        try:  # endpoint budgets name the endpoint by id; show its name where this user may read it
            listed = request("GET", "/api/3.0/mlflow/gateway/endpoints/list", timeout_s=timeout_s).get("endpoints", [])
            names = {e["endpoint_id"]: e["name"] for e in listed}
        except WorkbenchError:
            names = {}
    found = []
    for policy in policies:
        window = windows.get(policy["budget_policy_id"], {})
        scope = str(policy.get("target_scope", "GLOBAL")).lower()
        target = policy.get("target_value") or None
        if scope == "endpoint" and target:
            target = names.get(target, target)
        end_ms = window.get("window_end_ms")
        found.append(Budget(
            policy["budget_policy_id"], scope, target, float(policy.get("budget_amount") or 0.0),
            describe_period(policy.get("duration") or {}), str(policy.get("budget_action", "REJECT")),
            float(window.get("current_spend") or 0.0),
            datetime.fromtimestamp(int(end_ms) / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC") if end_ms else None,
        ))
    return found


def user_spend(who: str | None = None, timeout_s: float = _TIMEOUT_S) -> float:
    """What `who` (default: this user) spent through the gateway today (UTC), from the gateway's own traces:
    each request is traced in its endpoint's experiment with the caller's name and the cost. The gateway
    finishes that trace a few seconds after answering, so the newest calls may not count yet."""
    who = who or user()
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    names = [e["name"] for e in request("GET", "/api/3.0/mlflow/gateway/endpoints/list",
                                        timeout_s=timeout_s).get("endpoints", [])]
    locations = []
    for name in names:
        try:
            found = request("GET", "/api/2.0/mlflow/experiments/get-by-name",
                            params={"experiment_name": f"gateway/{name}"}, timeout_s=timeout_s)
        except TeamServerError:  # an endpoint with usage tracking off has no experiment
            continue
        locations.append({"type": "MLFLOW_EXPERIMENT",
                          "mlflow_experiment": {"experiment_id": found["experiment"]["experiment_id"]}})
    total, token = 0.0, None
    quoted = who.replace("'", "\\'")
    while locations:
        payload: dict[str, Any] = {
            "locations": locations, "max_results": 500,
            "filter": f"metadata.`mlflow.auth.username` = '{quoted}' AND trace.timestamp_ms >= "
                      f"{int(today.timestamp() * 1000)}"}
        if token:
            payload["page_token"] = token
        page = request("POST", "/api/3.0/mlflow/traces/search", payload, timeout_s=timeout_s)
        for trace in page.get("traces", []):
            cost = (trace.get("trace_metadata") or {}).get("mlflow.trace.cost")
            if cost:
                total += float(json.loads(cost).get("total_cost") or 0.0)
        token = page.get("next_page_token")
        if not token:
            break
    return total


def spend(timeout_s: float = _TIMEOUT_S) -> pd.DataFrame:
    """The team's budgets and what is spent in each current window (`mine` marks those that apply to this user),
    and a first row with what this user spent through the gateway today."""
    import pandas as pd

    me = user()
    rows = [{"scope": "you", "target": me, "limit_usd": None, "per": "today (UTC)", "action": "",
             "spent_usd": user_spend(me, timeout_s), "left_usd": None, "resets_at": "", "mine": True}]
    rows += [{"scope": b.scope, "target": b.target or "", "limit_usd": b.usd, "per": b.period, "action": b.action,
              "spent_usd": b.spent_usd, "left_usd": max(b.usd - b.spent_usd, 0.0), "resets_at": b.resets_at or "",
              "mine": b.scope in ("global", "endpoint") or b.target == me}
             for b in budgets(timeout_s)]
    columns = ["scope", "target", "limit_usd", "per", "action", "spent_usd", "left_usd", "resets_at", "mine"]
    return pd.DataFrame(rows, columns=columns)
