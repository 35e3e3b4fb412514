"""Secrets never reach what we show or store (issue 11, items 14-16): the tracking server's password in
messages and warnings, environment keys typed into prompts in the journal, exports, cache and golden
datasets, and an `api_key=` passed to one call."""

from __future__ import annotations

import http.server
import json
import socketserver
import threading
import warnings

import pandas as pd
import pytest

import workbench
from workbench import secrets
from workbench.errors import WorkbenchError
from workbench.providers import fake
from workbench.secrets import redact

PASSWORD = "Pw-hunter22-tracking"


class _SickServer(http.server.BaseHTTPRequestHandler):
    """A tracking server whose /health answers while its API fails (its database is down)."""

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/health"):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"OK")
            return
        self.send_response(503)
        self.end_headers()
        self.wfile.write(b"database down")

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def sick_server_with_password(monkeypatch):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SickServer)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    monkeypatch.setenv("WORKBENCH_TRACKING_URI", f"http://alice:{PASSWORD}@127.0.0.1:{port}/")
    from workbench import config
    from workbench.tracing import backend

    config.reset_settings()
    backend.reset()
    yield port
    server.shutdown()
    server.server_close()
    backend.reset()


def test_redact_masks_uri_passwords_in_userinfo_and_query():
    assert PASSWORD not in redact(f"API request to http://alice:{PASSWORD}@host:5000/api failed")
    assert PASSWORD not in redact(f"postgresql://host/db?user=bob&password={PASSWORD}&sslmode=require")
    assert "sslmode=require" in redact(f"postgresql://host/db?password={PASSWORD}&sslmode=require")
    assert PASSWORD not in redact(f"https://:{PASSWORD}@host/")


def test_show_trace_error_does_not_show_the_tracking_password(sick_server_with_password):
    with pytest.raises(WorkbenchError) as caught:
        workbench.show_trace("tr-0123456789abcdef0123456789abcdef")
    assert "reading trace" in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_calibration_warning_does_not_show_the_tracking_password(sick_server_with_password):
    fake.enqueue(['{"score": 5}', '{"score": 1}'])
    data = pd.DataFrame({"input": ["q1", "q2"], "output": ["a1", "a2"], "expected": ["e1", "e2"],
                         "human_score": [5, 1]})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = workbench.calibrate("fake/script", data, concurrency=1)
    assert result.n == 2 and result.run_id is None
    messages = [str(w.message) for w in caught if "calibration not logged" in str(w.message)]
    assert messages, [str(w.message) for w in caught]
    assert all(PASSWORD not in m for m in messages), messages


def test_a_cells_error_line_is_redacted_even_when_the_message_was_not():
    from workbench.notebook.display import error_bundle

    data, meta = error_bundle(WorkbenchError(f"cannot reach http://alice:{PASSWORD}@host:5000/"))
    assert PASSWORD not in data["text/plain"] and PASSWORD not in data["text/html"]
    assert PASSWORD not in meta["workbench"]["message"]


# -- item 16: keys typed into prompts are scrubbed wherever we store ------------------------------------------------

KEY = "zq-Kx81-verysecretvalue-0042"


def _files_holding(folder, needle: str) -> list[str]:
    """Every file under `folder` whose bytes contain `needle` (sqlite pages and WAL files included)."""
    return sorted(str(p) for p in folder.rglob("*") if p.is_file() and needle.encode() in p.read_bytes())


@pytest.fixture
def key_in_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ACME_SERVICE_API_KEY", KEY)
    monkeypatch.setenv("WORKBENCH_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    monkeypatch.setenv("WORKBENCH_TRACING", "on")
    from workbench import config

    config.reset_settings()
    return KEY


def test_a_key_typed_into_prompts_reaches_no_journal_export_cache_or_store(key_in_environment, workbench_home,
                                                                           tmp_path):
    liked = workbench.complete(f"Call the API with {KEY} please", "fake/echo")  # echo: the answer holds it too
    workbench.feedback(liked, stars=5, comment=f"worked with {KEY}")
    corrected = workbench.complete(f"What is my key? It is {KEY}", "fake/echo")
    workbench.feedback(corrected, thumbs=False, correction=f"Your key is {KEY}.")
    again = workbench.complete(f"Call the API with {KEY} please", "fake/echo")
    assert again.cache_hit  # the key is still a digest of the real question
    other = workbench.complete("Call the API with zq-another-key-9999 please", "fake/echo")
    assert not other.cache_hit  # ... which still tells questions apart

    exports = tmp_path / "exports"
    sft = workbench.training_data.sft(min_stars=4, path=exports / "sft.jsonl")
    prefs = workbench.training_data.preferences(path=exports / "dpo.jsonl")
    assert len(sft) == 2 and len(prefs) == 1
    assert KEY not in sft.to_json() and KEY not in prefs.to_json()
    workbench.tracing.flush()
    assert (workbench_home / "signals.sqlite").exists() and (exports / "sft.jsonl").exists()
    assert _files_holding(workbench_home, KEY) == []
    assert _files_holding(exports, KEY) == []
    assert _files_holding(tmp_path / "mlflow", KEY) == []


def test_a_key_in_golden_rows_reaches_no_store_or_file(key_in_environment, workbench_home, tmp_path):
    golden = workbench.golden("secrets-test")
    golden.add(f"Use {KEY} to log in", expected=f"logged in with {KEY}", notes=f"key {KEY}")
    golden.extend([{"input": [{"role": "user", "content": f"my key: {KEY}"}], "expected": "ok"}])
    assert all(KEY not in json.dumps(row.to_dict()) for row in golden.rows)
    golden.to_jsonl(tmp_path / "golden.jsonl")
    golden.save()
    assert len(golden) == 2
    assert _files_holding(workbench_home, KEY) == []
    assert KEY not in (tmp_path / "golden.jsonl").read_text(encoding="utf-8")
    assert _files_holding(tmp_path / "mlflow", KEY) == []


# -- item 14: an api_key= passed to one call ------------------------------------------------------------------------

CALL_KEY = "wbk-live-Q7x9Lm2Pz4Rt8Vn3Kd5"


def test_a_key_in_use_is_never_the_one_the_bounded_set_forgets(monkeypatch):
    # endpoint calls remember their key on every call; the set drops the least recently remembered, so a key used
    # all along survives any number of one-off keys passed once
    monkeypatch.setattr(secrets, "_remembered", {})
    secrets.remember_secret("in-use-key-000")
    for number in range(secrets._REMEMBER_MAX * 2):
        secrets.remember_secret(f"one-off-key-{number:04d}")
        if number % 50 == 0:  # used now and then, far more often than the set turns over
            secrets.remember_secret(" in-use-key-000 ")  # the same key, whitespace and all
        assert "in-use-key-000" in secrets.secret_values(), f"forgotten after {number + 1} one-off keys"
    assert redact("refused in-use-key-000") == "refused ***"
    assert len(secrets._remembered) == secrets._REMEMBER_MAX


def test_credentials_among_a_calls_params_are_remembered_headers_included(monkeypatch):
    monkeypatch.setattr(secrets, "_remembered", {})
    secrets.remember_credentials({
        "api_key": "call-key-123456", "temperature": 0.5, "aws_secret_access_key": "aws-s3cr3t",
        "extra_headers": {"Authorization": "Bearer tok-abcdef", "Cookie": "sid=cookie-val-1", "X-Team": "support-team"},
    })
    assert set(secrets._remembered) == {"call-key-123456", "aws-s3cr3t", "Bearer tok-abcdef", "tok-abcdef",
                                        "sid=cookie-val-1"}


class _Quoting401(http.server.BaseHTTPRequestHandler):
    """An OpenAI-compatible server that refuses the key and quotes it back, as OpenAI's own 401 does."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        key = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        body = json.dumps({"error": {"message": f"Incorrect API key provided: {key}. You can find your API key at "
                                                "https://example.invalid/keys.", "type": "invalid_request_error",
                                     "code": "invalid_api_key"}}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def quoting_provider(monkeypatch, tmp_path):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Quoting401)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("WORKBENCH_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    monkeypatch.setenv("WORKBENCH_TRACING", "on")
    from workbench import config

    config.reset_settings()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_an_api_key_passed_to_a_call_is_accepted_and_never_shown_or_stored(quoting_provider, workbench_home, tmp_path):
    from workbench.errors import MissingKeyError, ProviderError
    from workbench.notebook.display import error_bundle

    with pytest.raises(ProviderError) as caught:  # not MissingKeyError: the key was given, the provider refused it
        workbench.complete("hello", "openai/gpt-4o-mini", api_key=CALL_KEY, api_base=quoting_provider,
                           cache=False)
    assert not isinstance(caught.value, MissingKeyError)
    assert "Incorrect API key provided" in str(caught.value)  # the provider's words are kept ...
    assert CALL_KEY not in str(caught.value)  # ... without the key
    assert all(CALL_KEY not in a.message for a in caught.value.attempts)
    data, meta = error_bundle(caught.value)
    assert CALL_KEY not in json.dumps(data) + json.dumps(meta)
    workbench.tracing.flush()
    assert (tmp_path / "mlflow" / "mlflow.db").exists()
    assert _files_holding(workbench_home, CALL_KEY) == []
    assert _files_holding(tmp_path / "mlflow", CALL_KEY) == []
