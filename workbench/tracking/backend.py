"""MLflow, opened lazily against the current tracking URI: probe, quiet loggers, experiments beside the store.

An HTTP store is probed with a short timeout before MLflow touches it, because MLflow's own HTTP retries
block for minutes on a dead server. A local sqlite store keeps its artifacts beside the database file
(`<home>/mlartifacts`), never in the working directory.

When Workbench first opens its store, MLflow's own fluent API (`mlflow.get_trace`, `mlflow.search_traces`)
in the same process is pointed at it too, unless the user chose a tracking URI (mlflow.set_tracking_uri or
MLFLOW_TRACKING_URI): otherwise `mlflow.get_trace(_llm.trace_id)` looks in an empty ./mlflow.db of its own.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from filelock import FileLock, Timeout

from workbench.config import settings
from workbench.errors import StoreError
from workbench.secrets import redact
from workbench.tracking import gate

__all__ = ["Backend", "backend", "ensure_mlflow", "probe", "artifact_root", "default_experiment_name",
           "experiment_id", "reset", "PROBE_TIMEOUT_S", "HTTP_LIMITS", "OPEN_LOCK_TIMEOUT_S"]

PROBE_TIMEOUT_S = 2.0
# MLflow's own defaults (120 s timeout, 7 retries with backoff factor 2) block a call on a sick server for
# minutes; ours bound one request at about 5 s x 3 attempts + 2 s of backoff. A value the user set wins.
HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "5", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
               "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5"}
OPEN_LOCK_TIMEOUT_S = 300.0  # creating MLflow's ~60 tables on a slow disk takes seconds; a stuck holder, not minutes
_lock = threading.RLock()
_backends: dict[str, Backend] = {}
_global_uri: str | None = None


def default_experiment_name() -> str:
    return os.environ.get("MLFLOW_EXPERIMENT_NAME") or "workbench"


def artifact_root(uri: str) -> str | None:
    """`<folder of the db>/mlartifacts` for a local sqlite store; None lets a server choose."""
    if uri.startswith("sqlite:///"):
        path = uri.removeprefix("sqlite:///").split("?", 1)[0]
        if path and path != ":memory:":
            return str(Path(path).parent / "mlartifacts")
    return None


def probe(uri: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """None when the store looks usable; else one line saying why not."""
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        host = parts.hostname or "localhost"
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            socket.create_connection((host, port), timeout=timeout_s).close()
        except OSError as exc:
            return f"cannot connect to {host}:{port} ({exc.strerror or exc})"
        health = f"{parts.scheme}://{host}:{port}{parts.path.rstrip('/')}/health"
        try:
            with urllib.request.urlopen(health, timeout=timeout_s) as answer:  # noqa: S310 - the user's own server
                answer.read(64)
        except urllib.error.HTTPError as exc:
            if exc.code >= 500:
                return f"{health} answered HTTP {exc.code}"
        except OSError as exc:
            return f"{health} did not answer within {timeout_s:g} s ({exc})"
        return None
    if parts.scheme == "sqlite" or uri.startswith("sqlite:"):
        path = uri.removeprefix("sqlite:///").split("?", 1)[0]
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"cannot create {Path(path).parent} ({exc.strerror or exc})"
    return None


@dataclass
class Backend:
    """One tracking URI, opened: a TracingClient and the experiment ids already resolved."""

    uri: str
    client: Any  # mlflow.tracing.client.TracingClient
    experiments: dict[str, str] = field(default_factory=dict)

    @property
    def store(self) -> Any:
        return self.client.store

    def experiment_id(self, name: str) -> str:
        found = self.experiments.get(name)
        if found is None:
            found = experiment_id(name, self.uri, store=self.store)
            self.experiments[name] = found
        return found


def experiment_id(name: str, uri: str | None = None, *, store: Any = None) -> str:
    """Get or create an experiment by name; a local store puts its artifacts beside the database."""
    gate.mlflow()
    from mlflow.exceptions import MlflowException
    from mlflow.tracking._tracking_service.utils import _get_store

    uri = uri or current_uri()
    store = store or _get_store(uri)
    found = store.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            raise StoreError(f"experiment {name!r} is deleted in {redact(uri)}: restore it in the MLflow UI "
                             "or pick another name")
        return found.experiment_id
    root = artifact_root(uri)
    location = Path(root, name.replace("/", "_")).as_uri() if root else None
    try:
        return store.create_experiment(name, artifact_location=location)
    except MlflowException:  # created meanwhile by another process
        found = store.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def _creation_lock(uri: str) -> Any:
    """A file lock beside a local sqlite store, held while MLflow creates or migrates its schema: two kernels
    opening a fresh home at once otherwise race ("table latest_metrics already exists") and one loses tracing."""
    if artifact_root(uri) is None:  # a server, or an in-memory database: nothing on disk to share
        return contextlib.nullcontext()
    path = uri.removeprefix("sqlite:///").split("?", 1)[0]
    return FileLock(path + ".open.lock", timeout=OPEN_LOCK_TIMEOUT_S)


def current_uri() -> str:
    return settings().effective_tracking_uri


def backend(uri: str) -> Backend:
    """The opened backend for `uri`; raises StoreError (with the reason) when it is unusable."""
    with _lock:
        found = _backends.get(uri)
        if found is not None:
            return found
        reason = probe(uri)
        if reason:
            raise StoreError(f"MLflow store {redact(uri)} is unreachable: {reason}")
        if urlsplit(uri).scheme in ("http", "https"):
            for name, value in HTTP_LIMITS.items():
                os.environ.setdefault(name, value)
        try:
            mlflow = gate.mlflow()
            from mlflow.tracing.client import TracingClient

            gate.quiet()
            mlflow.tracing.disable_notebook_display()  # our own tree replaces MLflow's iframe
            with _creation_lock(uri):
                client = TracingClient(uri)  # opens the store now (creates the sqlite tables on first use)
        except Timeout as exc:
            raise StoreError(f"MLflow store {redact(uri)} cannot be opened: another process has held {exc.lock_file} "
                             f"for {OPEN_LOCK_TIMEOUT_S:g} s while creating it; if none is running, delete that "
                             "file") from exc
        except Exception as exc:
            raise StoreError(f"MLflow store {redact(uri)} cannot be opened: {redact(str(exc))[:300]}") from exc
        found = Backend(uri, client)
        _backends[uri] = found
        _point_fluent_api(uri)
        return found


_fluent_uri: str | None = None  # the URI we gave MLflow's fluent API (a later one of ours may replace it)


def _point_fluent_api(uri: str) -> None:
    """mlflow.set_tracking_uri(uri) unless the user chose one; never exported to child processes."""
    global _fluent_uri
    import mlflow

    if mlflow.is_tracking_uri_set() and mlflow.get_tracking_uri() not in (_fluent_uri, uri):
        return  # the user's choice (a URI of theirs, or MLFLOW_TRACKING_URI, which our settings honour too)
    _set_fluent(mlflow, uri)
    _fluent_uri = uri


def _set_fluent(mlflow: Any, uri: str) -> None:
    # set_tracking_uri also exports MLFLOW_TRACKING_URI; left there, it would outlive a later
    # configure(home=...) (our settings honour that variable) and leak into child processes.
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    if mlflow.get_tracking_uri() != uri or not mlflow.is_tracking_uri_set():
        mlflow.set_tracking_uri(uri)
    if saved is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = saved


def ensure_mlflow() -> Any:
    """The mlflow module, pointed at the current tracking URI (for the fluent APIs: runs, prompts)."""
    global _global_uri
    uri = current_uri()
    backend(uri)
    mlflow = gate.mlflow()
    with _lock:
        if _global_uri != uri or mlflow.get_tracking_uri() != uri:
            _set_fluent(mlflow, uri)
            mlflow.set_registry_uri(uri)
            _global_uri = uri
    return mlflow


def reset() -> None:
    """Forget opened backends (tests; after the home folder changes)."""
    global _global_uri, _fluent_uri
    with _lock:
        _backends.clear()
        _global_uri = _fluent_uri = None
