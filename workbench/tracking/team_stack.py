"""A whole team stack on one machine, for trying team mode and for the course notebook: offline, loopback only.

    from workbench.tracking.team_stack import start_local
    stack = start_local(upstream="smollm2", prices={...})   # MLflow server (sqlite, basic auth, AI Gateway)
    stack.add_user("alice", "alice-pw")                      #   + `transformers serve` on the bundled model
    ...
    stack.stop()

It sets what a real team server needs (mlflow/README.md): a key-encryption passphrase, basic auth with its
auth cache, the two settings that let gateway endpoints point at http and private hosts, and a served cost map
that prices the self-hosted model (without it its calls cost $0 and budgets never trip). A real team runs
mlflow/start-server.sh on PostgreSQL instead; this is sqlite, in a scratch folder, and every process it starts
is stopped by stop() (or at exit).
"""

from __future__ import annotations

import atexit
import os
import secrets as token_source
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from workbench.config import configure, settings
from workbench.errors import TeamServerError
from workbench.gateway import team
from workbench.providers.local import weights
from workbench.tracking.price_map import write_price_map

__all__ = ["TeamStack", "start_local", "free_port", "server_env", "start_upstream", "wait_for"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path, wait_s: float, what: str) -> None:
    """Poll `url` until it answers 200; one clear error with the log's tail if the process dies or time runs out."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - our own loopback URL
                if answer.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            state = f"exited with {process.returncode}" if process.poll() is not None else f"not up after {wait_s:g} s"
            raise TeamServerError(f"{what} {state}; its log {log} ends with:\n{tail}")
        time.sleep(0.3)


def server_env(base: dict[str, str], *, auth_ini: Path | None, cost_map_url: str | None,
               admin_password: str | None) -> dict[str, str]:
    """The environment a team MLflow server with its AI Gateway needs (see mlflow/README.md)."""
    env = dict(base)
    env.setdefault("MLFLOW_CRYPTO_KEK_PASSPHRASE", token_source.token_urlsafe(24))  # encrypts provider keys at rest
    env["MLFLOW_GATEWAY_API_BASE_ALLOWED_SCHEMES"] = "http,https"  # in-house upstreams speak http
    env["MLFLOW_GATEWAY_API_BASE_ALLOW_PRIVATE_IPS"] = "true"  # ... on private or loopback addresses
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")  # no background job workers: less memory
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if cost_map_url:
        env["LITELLM_MODEL_COST_MAP_URL"] = cost_map_url
        for variable in ("LITELLM_LOCAL_MODEL_COST_MAP", "LITELLM_OFFLINE_MODE"):  # both force the bundled map
            env.pop(variable, None)
    if auth_ini is not None:
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(auth_ini)
        env.setdefault("MLFLOW_FLASK_SERVER_SECRET_KEY", token_source.token_urlsafe(32))  # CSRF needs a fixed key
        if admin_password:
            env["MLFLOW_AUTH_ADMIN_PASSWORD"] = admin_password
    for variable in ("MLFLOW_TRACKING_URI", "WORKBENCH_TRACKING_URI", "MLFLOW_TRACKING_USERNAME",
                     "MLFLOW_TRACKING_PASSWORD"):
        env.pop(variable, None)  # the server is not a client of anything
    return env


def write_auth_ini(folder: Path, database_uri: str, default_permission: str = "EDIT") -> Path:
    path = folder / "auth.ini"
    path.write_text(
        "[mlflow]\n"
        # EDIT: write traces and runs to shared experiments, and call every endpoint
        f"default_permission = {default_permission}\n"
        f"database_uri = {database_uri}\n"
        "admin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "auth_cache_ttl_seconds = 60\n"  # PBKDF2 once a minute per user, not per call (+27 ms, not +106 ms)
    )
    return path


def start_upstream(model_dir: str | Path, folder: Path, *, wait_s: float = 180.0,
                   wait: bool = True) -> tuple[subprocess.Popen[bytes], str]:
    """`transformers serve` pinned to one model folder on a loopback port; returns (process, api_base).
    wait=False returns at once (start other things meanwhile, then wait_for(<api_base minus /v1>/health))."""
    port = free_port()
    executable = Path(sys.executable).with_name("transformers")
    command = [str(executable) if executable.exists() else "transformers", "serve", "--host", "127.0.0.1",
               "--port", str(port), str(model_dir)]
    log = folder / "upstream.log"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    if wait:
        wait_for(f"http://127.0.0.1:{port}/health", process, log, wait_s, "transformers serve")
    return process, f"http://127.0.0.1:{port}/v1"


@dataclass
class TeamStack:
    url: str
    admin: tuple[str, str]
    folder: Path
    upstream: str | None = None  # api_base of the self-hosted model, when one was started
    model: str | None = None  # the name the upstream serves its model under
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    owns_folder: bool = False
    passwords: dict[str, str] = field(default_factory=dict, repr=False)

    def add_user(self, name: str, password: str) -> None:
        """Create an MLflow user (basic auth) on the stack's server, as its admin."""
        self.passwords[name] = password
        try:
            team.request("POST", "/api/2.0/mlflow/users/create", {"username": name, "password": password},
                         login=self.admin, base=self.url)
        except TeamServerError as exc:
            if "already exists" not in str(exc).lower() and "RESOURCE_ALREADY_EXISTS" not in str(exc):
                raise

    def login(self, name: str) -> str:
        """Be `name` in this process from now on (admin or a user added here): point Workbench at the stack
        and set MLflow's credential variables, as each person would in their own environment."""
        password = self.admin[1] if name == self.admin[0] else self.passwords.get(name)
        if password is None:
            raise TeamServerError(f"no user {name!r} on this stack: add_user({name!r}, 'a-password-of-12+') first")
        os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = name, password
        os.environ["WORKBENCH_TRACKING_URI"] = self.url
        if settings().tracking_uri != self.url:
            configure(tracking_uri=self.url)
        return name

    def stop(self) -> None:
        """Stop every process this stack started (their whole process groups), newest first."""
        for process in reversed(self.processes):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(10)
                except ProcessLookupError:
                    pass
        self.processes.clear()
        if self.owns_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> TeamStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<TeamStack {self.url} upstream={self.upstream} processes={len(self.processes)}>"


def start_local(folder: str | Path | None = None, *, upstream: str | Path | None = None,
                prices: dict[str, tuple[float, float]] | None = None, admin_password: str | None = None,
                budget_refresh_s: int = 600, wait_s: float = 240.0) -> TeamStack:
    """Start a local team stack: an MLflow server on sqlite with basic auth and its AI Gateway on a free
    loopback port, a served cost map, and (with `upstream=`: a model folder, or "smollm2" for the bundled
    model) `transformers serve` as the self-hosted model. The upstream's model is priced at `prices` or
    $1/$2 per million tokens, so budgets count its calls."""
    owns = folder is None
    work = Path(folder or tempfile.mkdtemp(prefix="wb-team-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    stack = TeamStack("", ("admin", admin_password or token_source.token_urlsafe(12)), work, owns_folder=owns)
    atexit.register(stack.stop)
    try:
        all_prices = dict(prices or {})
        if upstream is not None:
            model_dir = _model_dir(upstream)
            process, stack.upstream = start_upstream(model_dir, work)
            stack.processes.append(process)
            stack.model = str(model_dir)
            all_prices.setdefault(stack.model, (1.0, 2.0))
        map_dir = work / "costmap"
        write_price_map(all_prices, map_dir)
        map_port = free_port()
        stack.processes.append(subprocess.Popen(
            [sys.executable, "-m", "http.server", str(map_port), "--bind", "127.0.0.1", "--directory", str(map_dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        port = free_port()
        auth_ini = write_auth_ini(work, f"sqlite:///{work / 'auth.db'}")
        env = server_env(dict(os.environ), auth_ini=auth_ini, cost_map_url=f"http://127.0.0.1:{map_port}/cost_map.json",
                         admin_password=stack.admin[1])
        env["MLFLOW_GATEWAY_BUDGET_REFRESH_INTERVAL"] = str(budget_refresh_s)
        log = work / "mlflow.log"
        command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}",
                   "--artifacts-destination", str(work / "artifacts"), "--serve-artifacts", "--host", "127.0.0.1",
                   "--port", str(port), "--workers", "1", "--app-name", "basic-auth"]
        with open(log, "wb") as out:
            stack.processes.append(subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=work,
                                                    start_new_session=True))
        stack.url = f"http://127.0.0.1:{port}"
        wait_for(f"{stack.url}/health", stack.processes[-1], log, wait_s, "the MLflow server")
    except BaseException:
        stack.stop()
        raise
    return stack


def _model_dir(upstream: str | Path) -> Path:
    if str(upstream) == "smollm2":  # the bundled model, as converted once into the per-user model cache
        found = weights.locate("smollm2")
        if found.kind != "cache":
            weights.load_base("smollm2")  # converts it (once, slow)
            found = weights.locate("smollm2")
        return Path(found.where)
    return Path(upstream).expanduser().resolve()
