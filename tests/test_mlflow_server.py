"""The team setup end to end: PostgreSQL + `mlflow server` on loopback ports, Workbench pointed at it.

Uses mlflow/postgres-local.sh and mlflow/start-server.sh (what the README tells a team to run), installs
PostgreSQL from Debian when it is missing, and stops everything it started.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

import workbench as wb
from workbench import config, tracing

pytestmark = pytest.mark.postgres  # make test-fast leaves it out: it starts PostgreSQL and an MLflow server

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "mlflow"


def _postgres_installed() -> bool:
    return any(os.access(path, os.X_OK) for path in glob.glob("/usr/lib/postgresql/*/bin/initdb"))


def _ensure_postgres() -> None:
    """Install Debian's PostgreSQL if missing; skip (with the reason) only when that is impossible."""
    if os.geteuid() == 0 and not shutil.which("runuser"):  # util-linux is in every Debian base: a broken image
        pytest.fail("runuser is missing: PostgreSQL cannot be started as the postgres user; install util-linux")
    if _postgres_installed():
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("PostgreSQL is not installed and cannot be installed here (needs root and apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.skip(f"PostgreSQL could not be installed: {' '.join(command)} failed: {done.stderr[-300:]}")
    if not _postgres_installed():
        pytest.skip("apt-get installed postgresql but no initdb was found under /usr/lib/postgresql")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str, payload: dict | None = None) -> dict:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - our own local server
        return json.loads(answer.read())


@pytest.fixture(scope="module")
def mlflow_server():
    _ensure_postgres()
    work = Path(tempfile.mkdtemp(prefix="wb-pg-"))
    os.chmod(work, 0o755)  # noqa: S103 - the postgres user must reach its data folder inside
    data, artifacts = work / "pgdata", work / "artifacts"
    pg_port, port = _free_port(), _free_port()
    started = subprocess.run([str(SCRIPTS / "postgres-local.sh"), "start", str(data), str(pg_port)],
                             capture_output=True, text=True, timeout=180)
    server = None
    try:
        assert started.returncode == 0, started.stderr
        store = started.stdout.strip().splitlines()[-1]
        env = dict(os.environ, MLFLOW_BACKEND_STORE_URI=store, MLFLOW_ARTIFACTS_DESTINATION=str(artifacts),
                   MLFLOW_PORT=str(port), MLFLOW_HOST="127.0.0.1")
        log = open(work / "mlflow.log", "wb")  # noqa: SIM115 - closed below
        server = subprocess.Popen([str(SCRIPTS / "start-server.sh")], env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:  # noqa: S310 - local server
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("mlflow server did not start:\n" + (work / "mlflow.log").read_text()[-3000:])
            time.sleep(0.5)
        yield url
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(10)
        subprocess.run([str(SCRIPTS / "postgres-local.sh"), "stop", str(data)], capture_output=True, timeout=120)
        shutil.rmtree(work, ignore_errors=True)


def test_workbench_traces_and_runs_land_in_the_team_server(mlflow_server, monkeypatch):
    monkeypatch.setenv("WORKBENCH_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("WORKBENCH_TRACING", "on")
    config.reset_settings()
    tracing.reset()
    try:
        with wb.run("team-check", name="pg", prompt_style="short") as run:
            with pytest.raises(ValueError), wb.span("pipeline", kind="chain") as root:
                with wb.span("retrieve", kind="retriever") as step:
                    step.set_outputs(["chunk"])
                answer = wb.complete("summarize the chunk", "fake/echo", cache=False)
                raise ValueError("Invalid address")
            run_id = run.run_id
        loose = wb.complete("outside any run", "fake/echo", cache=False, tags={"project": "team"})
        assert tracing.flush(120)
    finally:
        tracing.reset()
    assert answer.trace_id == root.trace_id

    experiment = _get(f"{mlflow_server}/api/2.0/mlflow/experiments/get-by-name?experiment_name=team-check")
    experiment_id = experiment["experiment"]["experiment_id"]
    found = _get(f"{mlflow_server}/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment_id]})
    (stored_run,) = found["runs"]
    assert stored_run["info"]["run_id"] == run_id and stored_run["info"]["status"] == "FINISHED"
    params = {p["key"]: p["value"] for p in stored_run["data"]["params"]}
    metrics = {m["key"]: m["value"] for m in stored_run["data"]["metrics"]}
    assert params == {"prompt_style": "short"} and metrics["calls"] == 1

    trace = _get(f"{mlflow_server}/api/3.0/mlflow/traces/get?trace_id={answer.trace_id}")["trace"]
    info = trace["trace_info"]
    assert info["state"] == "ERROR" and info["trace_metadata"]["mlflow.sourceRun"] == run_id
    spans = trace["spans"]
    names = sorted(span["name"] for span in spans)
    assert names == ["fake/echo", "pipeline", "retrieve"]
    failed = next(span for span in spans if span["name"] == "pipeline")
    assert failed["status"]["message"] == "Invalid address"

    # a trace outside a run is created from its spans alone (OTLP): its tags ride on the root span
    loose_trace = _get(f"{mlflow_server}/api/3.0/mlflow/traces/get?trace_id={loose.trace_id}")["trace"]
    tags = loose_trace["trace_info"]["tags"]
    assert tags["project"] == "team" and tags["mlflow.traceName"] == "fake/echo"
    assert loose_trace["trace_info"]["state"] == "OK"
