"""The MLflow UI on 127.0.0.1 against the current store (`workbench mlflow`, `%llm mlflow`).

A local sqlite store gets its own `mlflow server` child process; a tracking URI that is already a server
is simply returned (nothing to start). Credentials in a URI are never printed.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import ConfigError, StoreError
from workbench.secrets import redact
from workbench.tracking.backend import artifact_root, current_uri, probe

__all__ = ["UIServer", "start_ui", "server_command", "free_port"]

DEFAULT_PORT = 5000
_started: dict[str, UIServer] = {}


@dataclass
class UIServer:
    url: str
    store: str  # redacted
    process: subprocess.Popen | None = field(default=None, repr=False)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    @property
    def running(self) -> bool:
        return self.process is None or self.process.poll() is None


def free_port(host: str = "127.0.0.1", preferred: int = DEFAULT_PORT) -> int:
    for port in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise StoreError("no free port on 127.0.0.1 for the MLflow UI: pass port=...")


def server_command(uri: str, host: str, port: int) -> list[str]:
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host", host,
               "--port", str(port), "--workers", "1"]
    root = artifact_root(uri)
    if root:
        command += ["--artifacts-destination", root]
    return command


def _wait_healthy(url: str, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StoreError(f"the MLflow UI exited with code {process.returncode} before it answered; "
                             "run `workbench mlflow` in a terminal to see its log")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as answer:  # noqa: S310 - our own child
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise StoreError(f"the MLflow UI did not answer on {url} within {timeout_s:.0f} s")


def start_ui(port: int | None = None, host: str = "127.0.0.1", *, wait_s: float = 60.0,
             quiet: bool = True) -> UIServer:
    """Start (or reuse) the MLflow UI for the current store and return its URL; the server runs until
    this process exits or `.stop()`."""
    if port is not None and (not isinstance(port, int) or not 0 < port < 65536):
        raise ConfigError(f"port={port!r} must be a whole number from 1 to 65535, e.g. port=5000")
    uri = current_uri()
    if uri.startswith(("http://", "https://")):
        return UIServer(redact(uri), redact(uri))
    found = _started.get(uri)
    if found is not None and found.running:
        return found
    reason = probe(uri)
    if reason:
        raise StoreError(f"cannot open the MLflow store {redact(uri)}: {reason}")
    port = free_port(host, port or DEFAULT_PORT)
    output: Any = subprocess.DEVNULL if quiet else None
    process = subprocess.Popen(server_command(uri, host, port), stdout=output, stderr=output)
    server = UIServer(f"http://{host}:{port}", redact(uri), process)
    try:
        _wait_healthy(server.url, process, wait_s)
    except StoreError:
        server.stop()
        raise
    _started[uri] = server
    return server
