"""Team mode without a server: the team file's checks, team/<endpoint> names, the gateway's refusals as our
one-line errors, and the user every ledger row carries. (The server end to end: test_team_gateway.py.)"""

from __future__ import annotations

import http.server
import json
import threading
from typing import ClassVar

import httpx
import pytest

import workbench as wb
from workbench import identity
from workbench.errors import AccessDenied, BudgetExceeded, ConfigError, MissingKeyError, ModelError
from workbench.gateway import team
from workbench.tracking.team_spec import parse_spec

GOOD = {
    "secrets": [{"name": "openai", "provider": "openai", "api_key": "os.environ/OPENAI_API_KEY"},
                {"name": "box", "provider": "openai", "api_base": "http://10.0.0.5:8000/v1"}],
    "models": [{"name": "mini", "secret": "openai", "model": "gpt-4o-mini"},
               {"name": "smol", "secret": "box", "model": "SmolLM2"}],
    "endpoints": [{"name": "chat", "models": ["mini"], "fallbacks": ["smol"]},
                  {"name": "split", "models": {"mini": 0.9, "smol": 0.1}}],
    "budgets": [{"usd": 50, "per": "month"}, {"usd": 5, "per": "day", "endpoint": "chat"},
                {"usd": 1, "per": "2 weeks", "user": "alice", "action": "alert"}],
    "prices": {"SmolLM2": {"input_per_1m": 1.0, "output_per_1m": 2.0}},
}


def test_a_team_file_parses_into_what_the_gateway_needs():
    spec = parse_spec(GOOD, "team.yaml")
    assert [s.key_variable for s in spec.secrets] == ["OPENAI_API_KEY", None]
    assert spec.endpoints[0].fallbacks == ("smol",) and spec.endpoints[1].weights == {"mini": 0.9, "smol": 0.1}
    assert [(b.scope, b.target, b.duration_unit, b.duration_value, b.action) for b in spec.budgets] == [
        ("GLOBAL", None, "MONTHS", 1, "REJECT"), ("ENDPOINT", "chat", "DAYS", 1, "REJECT"),
        ("USER", "alice", "WEEKS", 2, "ALERT")]
    assert spec.prices == {"SmolLM2": (1.0, 2.0)}


@pytest.mark.parametrize("change, needle", [
    (lambda d: d["secrets"][0].update(api_key="sk-live-0123456789"), "api_key must be os.environ/NAME"),
    (lambda d: d["endpoints"][0].update(fallbacks=["nope"]), "model 'nope' is not among"),
    (lambda d: d["budgets"].append({"usd": 1, "per": "day", "user": "a", "endpoint": "chat"}), "not both"),
    (lambda d: d["budgets"].append({"usd": 1, "per": "fortnight"}), "must be day, week or month"),
    (lambda d: d["budgets"].append({"usd": 0, "per": "day"}), "usd 0 must be an amount > 0"),
    (lambda d: d["budgets"].append({"usd": 2, "per": "month"}), "same scope over the same period"),
    (lambda d: d.update(extra=1), "unknown section(s) extra"),
])
def test_a_bad_team_file_is_one_line_naming_the_entry(change, needle):
    import copy

    data = copy.deepcopy(GOOD)
    change(data)
    with pytest.raises(ConfigError) as caught:
        parse_spec(data, "team.yaml")
    assert needle in str(caught.value) and "\n" not in str(caught.value)
    assert "sk-live-0123456789" not in str(caught.value)  # a pasted key is never echoed


def test_a_missing_admin_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    secret = parse_spec(GOOD).secrets[0]
    with pytest.raises(ConfigError, match="export OPENAI_API_KEY"):
        secret.value("team.yaml secret openai")


def test_team_models_need_the_team_server():
    with pytest.raises(ModelError, match="names no team endpoint"):
        wb.complete("hi", "team/", cache=False)
    with pytest.raises(ConfigError, match="WORKBENCH_TRACKING_URI=http"):  # the default store is sqlite
        wb.complete("hi", "team/chat", cache=False)


def test_team_calls_go_to_the_gateway_route_with_the_users_login(monkeypatch):
    monkeypatch.setenv("WORKBENCH_TRACKING_URI", "http://mlflow.internal:5000/")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "alice-password-1")
    wb.configure()  # re-read the environment
    from workbench import config

    config.reset_settings()
    kwargs = team.litellm_kwargs("team/chat")
    assert kwargs["model"] == "openai/chat" and kwargs["api_base"] == "http://mlflow.internal:5000/gateway/mlflow/v1"
    assert kwargs["max_retries"] == 0  # the OpenAI SDK would retry a budget refusal twice
    assert kwargs["extra_headers"] == {"X-MLflow-Authorization": "Basic YWxpY2U6YWxpY2UtcGFzc3dvcmQtMQ=="}


def _litellm_error(kind: str, status: int, body: dict) -> Exception:
    import litellm

    request = httpx.Request("POST", "http://x/gateway/mlflow/v1/chat/completions")
    response = httpx.Response(status, json=body, request=request)
    error = getattr(litellm, kind)(message=str(body), llm_provider="openai", model="chat", response=response)
    error.body = body
    return error


def test_the_gateways_refusals_become_our_one_line_errors(monkeypatch):
    monkeypatch.setattr(team, "budgets", lambda timeout_s=0: [])  # no server to ask for the exact limit
    monkeypatch.setattr(team, "endpoints", lambda timeout_s=0: ["chat"])
    text = "Budget limit exceeded. Limit: $2.50 USD per 1 day. Budget resets at 2026-12-05T00:00:00Z. Request rejected."
    budget = _litellm_error("RateLimitError", 429, {"detail": text})
    refused = team.convert(budget, "team/chat")
    assert isinstance(refused, BudgetExceeded) and refused.budget_usd == 2.5
    assert "limit $2.50 per 1 day, resets at 2026-12-05 00:00 UTC" in str(refused) and "not retried" in str(refused)
    unknown = team.convert(_litellm_error("NotFoundError", 404, {"detail": {"message": "not found"}}), "team/nope")
    assert isinstance(unknown, ModelError) and "no endpoint 'nope'" in str(unknown)
    hidden = team.convert(_litellm_error("PermissionDeniedError", 403, {"detail": "denied"}), "team/secret")
    assert isinstance(hidden, ModelError)  # under basic auth an endpoint you cannot see answers 403
    forbidden = team.convert(_litellm_error("PermissionDeniedError", 403, {"detail": "denied"}), "team/chat")
    assert isinstance(forbidden, AccessDenied) and "USE permission" in str(forbidden)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    login = team.convert(_litellm_error("AuthenticationError", 401, {"detail": "no"}), "team/chat")
    assert isinstance(login, MissingKeyError) and "MLFLOW_TRACKING_PASSWORD" in str(login)
    plain = _litellm_error("RateLimitError", 429, {"detail": "slow down"})
    assert team.convert(plain, "team/chat") is plain  # an ordinary rate limit stays retryable


def test_the_user_is_the_mlflow_login_else_jupyterhub_else_the_os_user(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("JUPYTERHUB_USER", "hub-alice")
    assert identity.user() == "alice"
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    assert identity.user() == "hub-alice"
    monkeypatch.delenv("JUPYTERHUB_USER")
    import getpass

    assert identity.user() == getpass.getuser()


def test_every_ledger_row_and_trace_carries_the_user(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "bob")
    answer = wb.complete("hello", "fake/echo", cache=False)
    assert wb.calls(1)["user"].iloc[0] == "bob"
    from workbench.tracing import get_trace
    from workbench.tracing.mlflow_io import to_mlflow

    info, _ = to_mlflow(get_trace(answer.trace_id), "0")
    assert info.tags["workbench.user"] == "bob" and info.trace_metadata["mlflow.trace.user"] == "bob"


class _TeamServer(http.server.BaseHTTPRequestHandler):
    """Just the REST reads a user makes of a team server (the endpoint list, budgets and their windows)."""

    ANSWERS: ClassVar[dict[str, dict]] = {
        "/gateway/mlflow/v1/models": {"data": [{"id": "chat"}, {"id": "summaries"}]},
        "/api/3.0/mlflow/gateway/budgets/list": {"budget_policies": [
            {"budget_policy_id": "b1", "target_scope": "USER", "target_value": "alice", "budget_amount": 2.5,
             "duration": {"value": 1, "unit": "DAYS"}, "budget_action": "REJECT"}]},
        "/api/3.0/mlflow/gateway/budgets/windows": {"windows": [{"budget_policy_id": "b1", "current_spend": 0.75}]},
        "/api/3.0/mlflow/gateway/endpoints/list": {"endpoints": []},
    }

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        found = self.ANSWERS.get(self.path.split("?")[0])
        body = json.dumps(found if found is not None else {"error": "no such path"}).encode()
        self.send_response(200 if found is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass  # quiet test output


@pytest.fixture
def team_server(monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TeamServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("WORKBENCH_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "alice-password-1")
    from workbench import config

    config.reset_settings()
    yield url
    server.shutdown()
    server.server_close()
    monkeypatch.delenv("WORKBENCH_TRACKING_URI")
    config.reset_settings()


def test_the_llm_command_table_lists_team_endpoints_and_spend_team(team_server):
    from workbench.notebook.line_commands import commands_help, llm_line

    assert "%llm spend [by TAG | --team]" in commands_help()  # %%llm? documents the flag
    listed = llm_line("models")
    team_rows = listed[listed.kind == "team"]
    assert list(team_rows.index) == ["team/chat", "team/summaries"]
    assert set(team_rows.target) == {team_server + team.GATEWAY_PATH}
    spend = llm_line("spend --team")
    alice = spend[spend.scope == "user"].iloc[0]
    assert (alice.target, alice.limit_usd, alice.spent_usd, alice.left_usd) == ("alice", 2.5, 0.75, 1.75)
    with pytest.raises(ConfigError, match="%llm spend --team"):
        llm_line("spend --teams")


def test_team_status_names_every_model_the_gateway_cannot_price():
    """Issue 13: an unpriced self-hosted model costs $0 on the server, so its budgets never trip; say so loudly."""
    from workbench.tracking.team_admin import unpriced_models

    used = [{"model_name": "gpt-4o-mini", "provider": "openai"},
            {"model_name": "HuggingFaceTB/SmolLM2-135M-Instruct", "provider": "openai"},
            {"model_name": "my-vllm-llama", "provider": "openai"}]
    assert unpriced_models(used) == ["HuggingFaceTB/SmolLM2-135M-Instruct", "my-vllm-llama"]
    priced = {"my-vllm-llama": (1.0, 2.0)}
    assert unpriced_models(used, priced) == ["HuggingFaceTB/SmolLM2-135M-Instruct"]
