"""The team gateway end to end: PostgreSQL + `mlflow/start-server.sh` with basic auth and MLflow's AI Gateway,
`transformers serve` on the bundled SmolLM2 as the self-hosted upstream, two users.

An admin applies team.yaml (a dead primary model with the real one as fallback, a per-user budget for alice);
alice is refused once her budget is spent while bob still gets answers; the refusal is one red line in a
cell; the provider key appears nowhere on the client side (home folder, outputs, stored traces).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from test_magics import assert_one_red_line, run  # noqa: E402 - the magics' own one-red-line check
from test_mlflow_server import _ensure_postgres  # noqa: E402 - installs Debian's PostgreSQL when missing

import workbench as wb
from workbench import cli, config, tracing
from workbench.gateway import team
from workbench.tracking.team_stack import free_port, start_upstream, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "mlflow"
ADMIN = ("admin", "admin-password-0042")
USERS = {"alice": "alice-password-0042", "bob": "bob-password-00042"}
PROVIDER_KEY = "sk-team-upstream-key-7f3a9c2e1d"  # the admin's; must never reach a user's side


@pytest.fixture(scope="module")
def team_server():
    _ensure_postgres()
    work = Path(tempfile.mkdtemp(prefix="wb-team-pg-"))
    os.chmod(work, 0o755)  # noqa: S103 - the postgres user must reach its data folder inside
    data = work / "pgdata"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        from workbench.providers.local import weights

        model = weights.locate("smollm2")
        assert model.kind == "cache", f"the bundled model is not converted in the model cache: {model}"
        upstream, api_base = start_upstream(model.where, work, wait=False)  # loads while PostgreSQL and MLflow start
        processes.append(upstream)
        started = subprocess.run([str(SCRIPTS / "postgres-local.sh"), "start", str(data), str(free_port())],
                                 capture_output=True, text=True, timeout=180)
        assert started.returncode == 0, started.stderr
        store = started.stdout.strip().splitlines()[-1]
        team_file = work / "team.yaml"
        team_file.write_text(f"""
secrets:
  - {{name: smol-box, provider: openai, api_key: os.environ/SMOL_UPSTREAM_KEY, api_base: "{api_base}"}}
  - {{name: dead-box, provider: openai, api_key: os.environ/SMOL_UPSTREAM_KEY, api_base: "http://127.0.0.1:{free_port()}/v1"}}
models:
  - {{name: smol, secret: smol-box, model: "{model.where}"}}
  - {{name: dead, secret: dead-box, model: "{model.where}"}}
endpoints:
  - {{name: chat, models: [dead], fallbacks: [smol]}}
budgets:
  - {{usd: 0.0001, per: day, user: alice}}
  - {{usd: 50, per: month}}
prices:
  "{model.where}": {{input_per_1m: 1.0, output_per_1m: 2.0}}
""")
        port = free_port()
        env = dict(os.environ, MLFLOW_BACKEND_STORE_URI=store, MLFLOW_ARTIFACTS_DESTINATION=str(work / "artifacts"),
                   MLFLOW_PORT=str(port), MLFLOW_HOST="127.0.0.1", MLFLOW_STATE_DIR=str(work / "state"),
                   MLFLOW_BASIC_AUTH="1", MLFLOW_AUTH_ADMIN_PASSWORD=ADMIN[1],
                   MLFLOW_CRYPTO_KEK_PASSPHRASE="a-kek-passphrase-for-the-test", MLFLOW_GATEWAY_ALLOW_INTERNAL="1",
                   MLFLOW_GATEWAY_PRICES=str(team_file), PYTHONPATH=str(ROOT), PYTHON=sys.executable,
                   MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        log = work / "mlflow.log"
        with open(log, "wb") as out:
            server = subprocess.Popen([str(SCRIPTS / "start-server.sh")], env=env, stdout=out, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        processes.append(server)
        url = f"http://127.0.0.1:{port}"
        wait_for(f"{url}/health", server, log, 240, "start-server.sh")
        wait_for(api_base.removesuffix("/v1") + "/health", upstream, work / "upstream.log", 180, "transformers serve")
        for name, password in USERS.items():
            team.request("POST", "/api/2.0/mlflow/users/create", {"username": name, "password": password},
                         login=ADMIN, base=url)
        yield {"url": url, "team_file": team_file, "work": work, "log": log}
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(10)
        subprocess.run([str(SCRIPTS / "postgres-local.sh"), "stop", str(data)], capture_output=True, timeout=120)
        shutil.rmtree(work, ignore_errors=True)


def _login(monkeypatch, name: str, password: str) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", name)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)


def _cli(*args: str) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(list(args)) == 0
    return out.getvalue()


def _files_text(folder: Path) -> str:
    return "\n".join(p.read_bytes().decode("latin-1") for p in folder.rglob("*") if p.is_file())


def test_alice_is_refused_after_her_budget_while_bob_still_gets_answers(team_server, monkeypatch, workbench_home, ip):
    url = team_server["url"]
    monkeypatch.setenv("WORKBENCH_TRACKING_URI", url)
    monkeypatch.setenv("WORKBENCH_TRACING", "on")
    config.reset_settings()
    tracing.reset()

    # the admin: keys from the environment, applied idempotently
    _login(monkeypatch, *ADMIN)
    monkeypatch.setenv("SMOL_UPSTREAM_KEY", PROVIDER_KEY)
    first = _cli("team", "apply", str(team_server["team_file"]))
    assert "created endpoint chat (dead 1, fallback smol)" in first and "created budget user alice" in first, first
    assert _cli("team", "apply", str(team_server["team_file"])).strip() == "no changes"
    monkeypatch.delenv("SMOL_UPSTREAM_KEY")  # users never have it

    # alice: answered (through the fallback: the primary is down) until her budget is spent, then refused
    _login(monkeypatch, "alice", USERS["alice"])
    answers, refusal = [], None
    for number in range(8):
        try:
            answers.append(wb.complete(f"Say hello to guest {number}", "team/chat", cache=False, max_tokens=8))
        except wb.BudgetExceeded as exc:
            refusal = exc
            break
    assert refusal is not None, "alice was never refused"
    assert 1 <= len(answers) <= 4 and all(a.text for a in answers)
    message = str(refusal)
    assert "\n" not in message and "your budget (alice)" in message and "$0.0001 per 1 day" in message
    assert "resets at" in message and "not retried" in message
    assert wb.calls(1)["status"].iloc[0] == "refused"
    # as a cell: one red line, and nothing sent again
    line = assert_one_red_line(run(ip, "%%llm -m team/chat --no-cache\nOne more, please"), "BudgetExceeded",
                               "your budget (alice)")
    assert "Traceback" not in line

    # bob: still answered after alice's refusal
    _login(monkeypatch, "bob", USERS["bob"])
    for number in range(2):
        assert wb.complete(f"Say hello to host {number}", "team/chat", cache=False, max_tokens=8).text
    streamed = wb.stream("Count to three", "team/chat", cache=False, max_tokens=8)
    assert "".join(streamed) and streamed.response.completion_tokens > 0

    # the team's view: endpoints and the spend against each budget
    listed = ip.run_line_magic("llm", "models")
    assert "team/chat" in listed.index
    spend = wb.spend(team=True)
    alice_row = spend[(spend.scope == "user") & (spend.target == "alice")].iloc[0]
    assert alice_row.spent_usd >= 0.0001 and not alice_row.mine  # bob is asking
    mine = spend.iloc[0]
    assert mine.scope == "you" and mine.target == "bob"
    deadline = time.monotonic() + 60  # the gateway finishes its traces (cost, caller) a few seconds after answering
    while team.user_spend("bob") == 0 and time.monotonic() < deadline:
        time.sleep(1)
    assert team.user_spend("bob") > 0  # from the gateway's own traces of bob's calls
    assert team.user_spend("alice") >= alice_row.spent_usd * 0.99
    _login(monkeypatch, *ADMIN)
    status = _cli("team", "status", str(team_server["team_file"]))
    assert "team/chat: dead" in status and "user alice:" in status and "WARNING" not in status

    # who did what: our traces on the team server carry the user and the endpoint
    assert tracing.flush(120)
    trace = team.request("GET", "/api/3.0/mlflow/traces/get", params={"trace_id": answers[0].trace_id})["trace"]
    assert trace["trace_info"]["tags"]["workbench.user"] == "alice"
    assert "team/chat" in [s["name"] for s in trace["spans"]]
    llm_span = next(s for s in trace["spans"] if s["name"] == "team/chat")
    assert "/#/experiments/" in json.dumps(llm_span["attributes"]) and "gateway_traces" in json.dumps(llm_span)

    # the provider key is nowhere on the client side
    outputs = run(ip, "%llm spend --team").captured.stdout
    assert PROVIDER_KEY not in _files_text(workbench_home)
    assert PROVIDER_KEY not in json.dumps(trace) + outputs + message + first + status
    assert PROVIDER_KEY[-12:] not in _files_text(workbench_home)

    # each refusal of its own kind, each one line (traced in memory only: these logins cannot write traces)
    monkeypatch.setenv("WORKBENCH_TRACING", "memory")
    config.reset_settings()
    _login(monkeypatch, "bob", USERS["bob"])
    with pytest.raises(wb.ModelError, match="no endpoint 'nope'"):
        wb.complete("hi", "team/nope", cache=False)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not-bobs-password-1")
    with pytest.raises(wb.MissingKeyError, match="refused the login of 'bob'"):
        wb.complete("hi", "team/chat", cache=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    with pytest.raises(wb.MissingKeyError, match="MLFLOW_TRACKING_PASSWORD"):
        wb.complete("hi", "team/chat", cache=False)
    _login(monkeypatch, "bob", USERS["bob"])

    tracing.reset()
