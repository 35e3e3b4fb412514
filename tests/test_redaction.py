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
from workbench.errors import WorkbenchError
from workbench.gateway.secrets import redact
from workbench.providers import fake

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
