"""Shared fixtures: every test gets its own home folder, fresh settings and a clean fake provider."""

from __future__ import annotations

import gc
import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import signal
from unittest import mock

import pytest

# Ctrl-C tests (evaluations, fine-tunes) need SIGINT to raise KeyboardInterrupt, as it does in a Jupyter
# kernel; a CI runner that starts us in the background may have SIGINT ignored, and then Python never
# installs its handler.
if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL):
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def workbench_home(tmp_path, monkeypatch):
    """A private home folder per test; no retry backoff, so failure tests run fast."""
    home = tmp_path / "wbhome"
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    monkeypatch.setenv("WORKBENCH_RETRY_BACKOFF", "0")
    for variable in ("WORKBENCH_TRACKING_URI", "MLFLOW_TRACKING_URI", "WORKBENCH_MODEL", "WORKBENCH_JUDGE_MODEL"):
        monkeypatch.delenv(variable, raising=False)  # the developer's own settings must not leak into tests
    monkeypatch.setenv("WORKBENCH_ENDPOINTS", "off")  # nor a workbench.yaml at the repository's root
    # Traces stay in memory unless a test needs the MLflow store (those set WORKBENCH_TRACING=on):
    # exporting every test's calls to a fresh store costs seconds each.
    monkeypatch.setenv("WORKBENCH_TRACING", "memory")
    from workbench import config
    from workbench.gateway import models, prices
    from workbench.providers import fake

    config.reset_settings()
    fake.reset()
    models.clear()
    prices.clear_prices()
    yield home
    config.reset_settings()
    models.clear()


@pytest.fixture
def tracing_on(monkeypatch):
    """For tests that read traces or assessments back from the MLflow store."""
    monkeypatch.setenv("WORKBENCH_TRACING", "on")
    from workbench import config

    config.reset_settings()
    yield
    from workbench import tracing

    tracing.flush()


@pytest.fixture(scope="session")
def ipython_shell():
    """The one IPython shell of the test run (IPython allows one InteractiveShell singleton per process)."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"  # no history.sqlite in the user's IPython dir
    return InteractiveShell.instance(config=config)


@pytest.fixture
def ip(ipython_shell):
    """A fresh session of that shell with `%load_ext workbench`, unloaded afterwards."""
    from workbench.notebook import extension

    # reset() ends with a full gc.collect(): ~0.7 s a test once litellm and MLflow are loaded. Refcounting frees
    # the old namespace anyway, and the automatic collector still runs, so skip that one forced pass.
    with mock.patch.object(gc, "collect", return_value=0):
        ipython_shell.reset(new_session=True)
    extension._sessions.pop(ipython_shell, None)
    ipython_shell.run_line_magic("load_ext", "workbench")
    yield ipython_shell
    ipython_shell.run_line_magic("unload_ext", "workbench")
    extension._sessions.pop(ipython_shell, None)


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    """One MLflow store per test module: creating one costs seconds."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def module_mlflow_store(shared_store, monkeypatch):
    """Point this test at its module's shared MLflow store (homes stay per test)."""
    from workbench import config

    monkeypatch.setenv("WORKBENCH_TRACKING_URI", shared_store)
    config.reset_settings()
    return shared_store
