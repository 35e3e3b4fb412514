"""The endpoints file (LiteLLM's model_list) and per-call api_key/api_base/extra_headers.

Models are our fake/ provider; what litellm really sends over HTTP is observed by a loopback server that answers
like OpenAI's API (a 200 chat completion, or OpenAI's 401) and records each request's headers: a fault injector
and a wire tap, not a model. The real OpenAI-compatible server (`transformers serve`) is in test_endpoints_serve.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import workbench as wb
from workbench import tracing
from workbench.errors import ConfigError, MissingKeyError, ModelError, ProviderError
from workbench.gateway import endpoint_registry, stores
from workbench.secrets import redact

KEY = "wb-test-key-7f3a9c21e5"  # held in MYGW_KEY: a name the environment scan does not take for a secret


class _Wire(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, status: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.status = status
        self.requests: list[dict] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        server: _Wire = self.server  # type: ignore[assignment]
        server.requests.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
        if server.status == 401:  # what api.openai.com answers, quoting the start of the key
            token = self.headers.get("authorization", "").removeprefix("Bearer ")
            payload = {"error": {"message": f"Incorrect API key provided: {token}. You can find your API key at "
                                            "https://platform.openai.com/account/api-keys.",
                                 "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}
        else:
            text = "wire says " + str(body["messages"][-1]["content"])
            payload = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body.get("model"),
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": text}}],
                       "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}
        data = json.dumps(payload).encode()
        self.send_response(server.status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def _serve(status: int):
    server = _Wire(status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


@pytest.fixture
def wire():
    server = _serve(200)
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def wire_401():
    server = _serve(401)
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def endpoints_file(tmp_path, monkeypatch):
    """Write an endpoints file and point WORKBENCH_ENDPOINTS at it."""
    path = tmp_path / "endpoints.yaml"

    def write(text: str) -> Path:
        path.write_text(text)
        monkeypatch.setenv("WORKBENCH_ENDPOINTS", str(path))
        return path

    yield write
    endpoint_registry.reset()


ECHO_FILE = """\
model_list:
  - model_name: echo
    litellm_params:
      model: fake/echo
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
  - model_name: pair
    litellm_params:
      model: fake/echo
      weight: 1
  - model_name: pair
    litellm_params:
      model: fake/echo
      weight: 3
  - model_name: down
    litellm_params:
      model: fake/fail?status=503
router_settings:
  fallbacks: [{"down": ["echo"]}]
"""


# -- finding and reading the file ------------------------------------------------------------------------------


def test_endpoints_answer_by_name_with_file_prices_routes_and_fallbacks(endpoints_file):
    endpoints_file(ECHO_FILE)
    response = wb.complete("hello endpoint", "echo", cache=False)
    assert response.text == "hello endpoint" and response.model_used == "echo"
    assert response.cost_usd == pytest.approx(2 * 1e-6 + 2 * 2e-6)  # the file's per-token prices
    used = {wb.complete(f"call {i}", "pair", cache=False).model_used for i in range(40)}
    assert used == {"pair[0]", "pair[1]"}  # a weighted route over two entries with one model_name
    fell = wb.complete("fall back", "down", cache=False)
    assert fell.fell_back and fell.model_used == "echo" and fell.attempts and fell.attempts[0].model == "down"
    # a fallback given to the call replaces the file's
    with pytest.raises(ProviderError, match="fake/fail"):
        wb.complete("no file fallback", "down", fallbacks=["fake/fail?status=400"], cache=False)


def test_the_file_is_found_in_env_then_project_then_home(tmp_path, monkeypatch, workbench_home):
    monkeypatch.delenv("WORKBENCH_ENDPOINTS")  # conftest turns the file off
    project = tmp_path / "project"
    (project / "sub").mkdir(parents=True)
    (project / "pyproject.toml").write_text("")
    monkeypatch.chdir(project / "sub")
    workbench_home.mkdir(parents=True, exist_ok=True)
    (workbench_home / "endpoints.yaml").write_text(
        "model_list:\n  - model_name: from-home\n    litellm_params: {model: fake/echo}\n")
    assert [e.name for e in wb.list_endpoints()] == ["from-home"]
    (project / "workbench.yaml").write_text(
        "model_list:\n  - model_name: from-project\n    litellm_params: {model: fake/echo}\n")
    wb.reload_endpoints()
    assert [e.name for e in wb.list_endpoints()] == ["from-project"]
    named = tmp_path / "team.yaml"
    named.write_text("model_list:\n  - model_name: from-env\n    litellm_params: {model: fake/echo}\n")
    monkeypatch.setenv("WORKBENCH_ENDPOINTS", str(named))
    assert wb.complete("hi", "from-env", cache=False).model_used == "from-env"
    monkeypatch.setenv("WORKBENCH_ENDPOINTS", str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match=r"WORKBENCH_ENDPOINTS=.*nope\.yaml.* names no file"):
        wb.reload_endpoints()
    monkeypatch.setenv("WORKBENCH_ENDPOINTS", "off")
    assert wb.reload_endpoints() is None and wb.list_endpoints() == []
    endpoint_registry.reset()


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("model_list:\n  - model_name: a\n    litellm_params:\n      model: fake/echo\n     api_base: x\n", 5,
         "not valid YAML"),
        ("model_list:\n  - model_name: a\n    litellm_params:\n      model: fake/echo\n"
         "  - model_name: b\n    litellm_params:\n      rpm: 5\n", 7, "'b' has model=None"),
        ("model_list:\n  - model_name: a\n    litellm_params:\n      model: fake/echo\n      rpm: many\n", 5,
         "rpm='many'"),
        ("model_list:\n  - model_name: a\n    litellm_params:\n      model: nosuchprovider/x\n", 4,
         "no provider for model 'nosuchprovider/x'"),
        ("model_list:\n  - model_name: a\n    litellm_params: {model: fake/echo}\n    tpm: 3\n", 4,
         "unknown key 'tpm'"),
        ("model_list:\n  - model_name: a\n    litellm_params: {model: fake/echo}\n"
         "router_settings:\n  fallbacks: [{zzz: [a]}]\n", 5, "no model_list entry is named 'zzz'"),
        ("model_list:\n  - model_name: a\n    model_name: b\n", 3, "appears twice"),
        ("general_settings: {}\n", 1, "no model_list"),
    ],
)
def test_a_malformed_file_is_one_line_naming_file_line_and_fix(endpoints_file, text, line, words):
    path = endpoints_file(text)
    with pytest.raises(ConfigError) as caught:
        wb.reload_endpoints()
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: ") and words in message and "\n" not in message
    assert ";" in message  # the fix follows the problem


def test_a_key_written_into_the_file_is_refused_without_quoting_it(endpoints_file):
    endpoints_file("model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/x\n"
                   "      api_base: http://127.0.0.1:9/v1\n      api_key: sk-live-abcdef123456\n")
    with pytest.raises(ConfigError, match=r"endpoints\.yaml:6: .*not os\.environ/NAME.*os\.environ/NAME") as caught:
        wb.reload_endpoints()
    assert "abcdef123456" not in str(caught.value)


def test_a_broken_file_stops_nothing_else_and_a_bad_reload_keeps_the_old_endpoints(endpoints_file, ip, capsys):
    path = endpoints_file(ECHO_FILE)
    assert wb.complete("before", "echo", cache=False).text == "before"
    path.write_text(ECHO_FILE.replace("  - model_name: pair\n", "  - model_name: pair\n   oops: [\n", 1))
    with pytest.raises(ConfigError, match=r"endpoints\.yaml:\d+: .*; kept the 3 endpoint\(s\) loaded before"):
        wb.reload_endpoints()
    assert wb.complete("still here", "echo", cache=False).text == "still here"  # the old endpoints answer
    ip.run_line_magic("llm", "endpoints reload")  # one red line, no traceback
    shown = capsys.readouterr()
    assert "endpoints.yaml:" in shown.out + shown.err and "Traceback" not in shown.out + shown.err
    # a new process (or a new home) starting on the broken file: a warning, other models answer
    endpoint_registry.reset()
    with pytest.warns(UserWarning, match=r"endpoints not loaded: .*endpoints\.yaml:\d+"):
        assert wb.complete("other models", "fake/echo", cache=False).text == "other models"
    with pytest.raises(ModelError, match=r"unknown model 'echo'.*endpoints file did not load: .*endpoints\.yaml:\d+"):
        wb.complete("gone", "echo", cache=False)
    path.write_text(ECHO_FILE)
    ip.run_line_magic("llm", "endpoints reload")
    assert "endpoints reloaded from" in capsys.readouterr().out
    assert wb.complete("back", "echo", cache=False).model_used == "echo"


# -- where endpoints point, keys, headers --------------------------------------------------------------------------


def _wire_file(endpoints_file, wire, *, key: bool = True) -> Path:
    line = "      api_key: os.environ/MYGW_KEY\n" if key else ""
    return endpoints_file(
        "model_list:\n  - model_name: gw\n    litellm_params:\n      model: openai/served-model\n"
        f"      api_base: {wire.base}\n{line}      rpm: 60\n")


def test_models_lists_every_endpoint_with_where_it_points_and_never_a_key(endpoints_file, wire, ip, monkeypatch):
    monkeypatch.setenv("MYGW_KEY", KEY)
    _wire_file(endpoints_file, wire)
    table = ip.run_line_magic("llm", "models")
    row = table.loc["gw"]
    assert row["kind"] == "endpoint"
    assert wire.base in row["target"] and "$MYGW_KEY" in row["target"] and "unpriced" in row["target"]
    assert KEY not in table.to_string()
    assert list(ip.run_line_magic("llm", "endpoints").index) == ["gw"]


def test_an_endpoint_key_comes_from_its_variable_and_never_reaches_cache_ledger_or_traces(
        endpoints_file, wire, monkeypatch):
    monkeypatch.setenv("MYGW_KEY", KEY)
    monkeypatch.setenv("WORKBENCH_TRACING", "memory")
    _wire_file(endpoints_file, wire)
    response = wb.complete("hello wire", "gw", max_tokens=5)
    assert response.text == "wire says hello wire" and response.model_used == "gw"
    assert response.cost_usd is None  # a server of our own: unpriced until priced
    (request,) = wire.requests
    assert request["headers"]["authorization"] == f"Bearer {KEY}" and request["body"]["model"] == "served-model"
    assert wb.complete("hello wire", "gw", max_tokens=5).cache_hit
    trace = tracing.get_trace(response.trace_id)
    dumped = json.dumps([dataclasses.asdict(s) for s in trace.spans], default=str)
    assert KEY not in dumped and "gw" in dumped
    for store in (stores.cache().path, stores.ledger().path):
        assert KEY.encode() not in b"".join(p.read_bytes() for p in store.parent.glob(store.name + "*"))
    wb.set_price("gw", input_per_1m=1.0, output_per_1m=2.0)
    assert wb.complete("priced now", "gw").cost_usd == pytest.approx((5 * 1 + 3 * 2) / 1e6)


def test_a_missing_key_variable_is_named_before_anything_is_sent(endpoints_file, wire, monkeypatch):
    monkeypatch.delenv("MYGW_KEY", raising=False)
    _wire_file(endpoints_file, wire)
    with pytest.raises(MissingKeyError, match=r"endpoint 'gw' needs MYGW_KEY .*os\.environ/MYGW_KEY") as caught:
        wb.complete("no key yet", "gw", cache=False)
    assert caught.value.variables == ("MYGW_KEY",) and wire.requests == []


def test_a_server_without_keys_gets_a_placeholder_never_the_providers_own_key(endpoints_file, wire, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-openai-key-000111222")
    _wire_file(endpoints_file, wire, key=False)
    assert wb.complete("no key needed", "gw", cache=False).text == "wire says no key needed"
    monkeypatch.delenv("OPENAI_API_KEY")
    assert wb.complete("no key at all", "gw", cache=False).text == "wire says no key at all"
    sent = [r["headers"]["authorization"] for r in wire.requests]
    assert sent == ["Bearer workbench-no-key"] * 2


def test_a_401_is_not_retried_and_names_the_key_variable(endpoints_file, wire_401, monkeypatch):
    monkeypatch.setenv("MYGW_KEY", KEY)
    _wire_file(endpoints_file, wire_401)
    with pytest.raises(ProviderError) as caught:
        wb.complete("let me in", "gw", cache=False)
    message = str(caught.value)
    assert len(wire_401.requests) == 1  # no retry, by us or the OpenAI client
    assert "401" in message and "set MYGW_KEY" in message and "not retried" in message
    assert KEY not in message and "\n" not in message  # the server quoted the key: masked
    assert KEY not in json.dumps(wb.calls().to_dict(orient="records"), default=str)
    # with a fallback, the refused attempt is recorded and the fallback answers
    answered = wb.complete("let me in", "gw", fallbacks=["fake/echo"], cache=False)
    assert answered.model_used == "fake/echo" and [a.error_type for a in answered.attempts] == ["ProviderError"]
    assert "MYGW_KEY" in answered.attempts[0].message and KEY not in answered.attempts[0].message
    spans = tracing.get_trace(answered.trace_id).spans
    failed = [s for s in spans if s.status == "ERROR"]
    assert failed and "MYGW_KEY" in failed[0].error_message
    assert KEY not in json.dumps([dataclasses.asdict(s) for s in spans], default=str)


def test_api_key_api_base_and_extra_headers_passed_to_complete_are_honoured(wire, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    secret = "call-key-9a8b7c6d5e"
    response = wb.complete("direct", "openai/served-model", api_base=wire.base, api_key=secret,
                           extra_headers={"X-Team": "support", "X-Gateway-Authorization": "Basic dXNlcjpwdw=="},
                           fallbacks=["fake/echo"])
    assert response.text == "wire says direct" and response.cost_usd is None
    headers = wire.requests[0]["headers"]
    assert headers["authorization"] == f"Bearer {secret}" and headers["x-team"] == "support"
    assert headers["x-gateway-authorization"] == "Basic dXNlcjpwdw=="
    assert secret not in json.dumps(response.params) and "api_key" not in response.params
    # the key and the auth header are redacted wherever our text goes
    assert redact(f"oops {secret} and dXNlcjpwdw==") == "oops *** and ***"
    # no key: a placeholder, not a demand for OPENAI_API_KEY
    assert wb.complete("keyless", "openai/served-model", api_base=wire.base, cache=False).text == "wire says keyless"
    assert wire.requests[-1]["headers"]["authorization"] == "Bearer workbench-no-key"
    with pytest.raises(ConfigError, match=r"api_base='ftp://x' is not a URL"):
        wb.complete("bad", "openai/served-model", api_base="ftp://x")


def test_api_base_does_not_change_an_endpoints_cache_key_but_does_a_model_strings(endpoints_file, wire, monkeypatch):
    monkeypatch.setenv("MYGW_KEY", KEY)
    _wire_file(endpoints_file, wire)
    first = wb.complete("same question", "gw")
    elsewhere = wire.base.replace("127.0.0.1", "localhost")
    again = wb.complete("same question", "gw", api_base=elsewhere, api_key="other-key-1")
    assert not first.cache_hit and again.cache_hit and len(wire.requests) == 1
    a = wb.complete("same question", "openai/served-model", api_base=wire.base)
    b = wb.complete("same question", "openai/served-model", api_base=wire.base.replace("127.0.0.1", "localhost"))
    assert not a.cache_hit and not b.cache_hit and len(wire.requests) == 3


def test_self_hosted_litellm_zero_prices_are_unpriced_and_the_footer_says_so():
    from workbench.gateway import prices
    from workbench.notebook import display

    assert prices.price_of("ollama/llama3") is None  # litellm lists it at $0: unknown, not free
    assert prices.price_of("openai/gpt-4o-mini") is not None
    assert prices.price_of("local/smollm2") is not None  # our own model: free by our word
    response = wb.Response(text="x", model="gw", model_used="gw", cost_usd=None)
    assert "unpriced" in display.footer_text(response) and "$0.00" not in display.footer_text(response)


def test_route_refuses_an_endpoint_name_with_a_hint(endpoints_file):
    endpoints_file(ECHO_FILE)
    with pytest.raises(ConfigError, match=r"'echo' is itself a route or endpoint"):
        wb.route("mix", {"echo": 1, "fake/echo": 1})


def test_endpoint_env_references_in_other_params_are_read_at_call_time(endpoints_file, wire, monkeypatch):
    endpoints_file("model_list:\n  - model_name: gw\n    litellm_params:\n      model: openai/served-model\n"
                   "      api_base: os.environ/GW_BASE\n")
    monkeypatch.delenv("GW_BASE", raising=False)
    with pytest.raises(ConfigError, match=r"reads api_base from os\.environ/GW_BASE, which is not set: export GW_BASE"):
        wb.complete("where", "gw", cache=False)
    monkeypatch.setenv("GW_BASE", wire.base)
    assert wb.complete("there", "gw", cache=False).text == "wire says there"
    assert os.environ["GW_BASE"] not in {e.where for e in wb.list_endpoints()}  # the file's words, not the value


@pytest.mark.slow
def test_doctor_names_the_endpoints_file_or_why_it_did_not_load(endpoints_file):
    from workbench.doctor import report

    path = endpoints_file(ECHO_FILE)
    assert f"endpoints      {path} (echo, pair, down)" in report()
    path.write_text("model_list: [\n")
    endpoint_registry.reset()
    assert f"endpoints      not loaded: {path}:" in report()
