"""A JupyterLab server and a Chromium page for the browser tests and bench/bench_extension.py.

The server binds to 127.0.0.1 with a token, in a temporary root folder, with its own Jupyter config,
settings, workspaces and WORKBENCH_HOME, so nothing of the user's leaks in or out. The browser is
Debian's Chromium driven by Playwright (never a downloaded one), with a fresh profile.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
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
from typing import Any

__all__ = ["CHROMIUM", "CHROMIUM_FLAGS", "Lab", "start_lab", "open_browser", "Notebook", "chromium_missing"]

CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EXTENSION = "llmops-workbench"


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return f"Chromium is not installed at {CHROMIUM} (apt-get install chromium; CI installs it)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    home: Path
    process: subprocess.Popen
    log: Path
    scratch: Path = field(repr=False)

    def api(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                         headers={"Authorization": f"token {self.token}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - our own loopback server
            text = answer.read()
        return json.loads(text) if text else None

    def write_notebook(self, name: str, cells: list[str]) -> str:
        """A notebook of code cells in the server's root (through the contents API)."""
        notebook = {
            "nbformat": 4, "nbformat_minor": 5,
            "metadata": {
                "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
                "language_info": {"name": "python"},
            },
            "cells": [{"cell_type": "code", "id": f"cell{i}", "metadata": {}, "source": source, "outputs": [],
                       "execution_count": None} for i, source in enumerate(cells)],
        }
        self.api("PUT", f"/api/contents/{name}", {"type": "notebook", "format": "json", "content": notebook})
        return name

    def read_notebook(self, name: str) -> dict[str, Any]:
        return self.api("GET", f"/api/contents/{name}?content=1")["content"]

    def page_url(self, path: str = "") -> str:
        return f"{self.url}/lab/tree/{path}?token={self.token}"

    def stop(self) -> None:
        for kernel in self._kernels():
            with contextlib.suppress(OSError):  # already gone: the server is stopping anyway
                self.api("DELETE", f"/api/kernels/{kernel['id']}")
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.scratch, ignore_errors=True)

    def _kernels(self) -> list[dict[str, Any]]:
        try:
            return self.api("GET", "/api/kernels") or []
        except OSError:
            return []


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _this_trees_extension(scratch: Path) -> list[str]:
    """Serve the labextension built in this checkout (workbench/labextension), ahead of an installed copy,
    so a worktree's browser tests run its own TypeScript: JupyterLab takes the first folder that holds an
    extension of a given name, and extra_labextensions_path comes first."""
    built = Path(__file__).resolve().parents[2] / "workbench" / "labextension"
    if not (built / "package.json").exists():
        return []
    folder = scratch / "labextensions"
    folder.mkdir()
    (folder / EXTENSION).symlink_to(built, target_is_directory=True)
    return [f"--LabApp.extra_labextensions_path={folder}"]


def start_lab(timeout_s: float = 120.0, extra_env: dict[str, str] | None = None) -> Lab:
    """Start `jupyter lab` on a free loopback port and wait until it answers."""
    scratch = Path(tempfile.mkdtemp(prefix="wb-lab-"))
    root, home, config = scratch / "root", scratch / "wbhome", scratch / "config"
    root.mkdir()
    # no news/update toast over the notebook: the announcements plugin is off in this private config
    _write(config / "labconfig" / "page_config.json",
           {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    token = secrets.token_hex(16)
    port = _free_port()
    env = dict(os.environ)
    env.update({
        "WORKBENCH_HOME": str(home),
        "WORKBENCH_RETRY_BACKOFF": "0",
        "WORKBENCH_TRACING": "on",  # as a user has it: traces stored in MLflow (feedback reads them back)
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTERLAB_SETTINGS_DIR": str(scratch / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(scratch / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(scratch / "runtime"),
        "IPYTHONDIR": str(scratch / "ipython"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    })
    env.pop("WORKBENCH_TRACKING_URI", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update(extra_env or {})
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--port-retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               "--ServerApp.open_browser=False", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "getuid") and os.getuid() == 0:
        command.append("--allow-root")
    command += _this_trees_extension(scratch)
    log = scratch / "jupyter.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    lab = Lab(f"http://127.0.0.1:{port}", token, root, home, process, log, scratch)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            text = log.read_text(errors="replace")[-3000:]
            shutil.rmtree(scratch, ignore_errors=True)
            raise RuntimeError(f"jupyter lab exited with code {process.returncode}:\n{text}")
        try:
            lab.api("GET", "/api/status")
            return lab
        except OSError:
            time.sleep(0.3)
    lab.stop()
    raise RuntimeError(f"jupyter lab did not answer on {lab.url} within {timeout_s:.0f} s")


def open_browser(playwright: Any, profile: Path, *, width: int = 1280, height: int = 960) -> Any:
    """A persistent Chromium context with a fresh profile (Debian's Chromium, no download)."""
    return playwright.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
        viewport={"width": width, "height": height}, device_scale_factor=1,
    )


class Notebook:
    """One open notebook in the page; runs cells the way a user does."""

    def __init__(self, page: Any, lab: Lab, name: str) -> None:
        self.page, self.lab, self.name = page, lab, name

    @property
    def panel(self) -> Any:
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")

    def open(self, timeout_ms: int = 120_000) -> Notebook:
        self.page.goto(self.lab.page_url(self.name))
        self.panel.locator(".jp-Cell").first.wait_for(timeout=timeout_ms)
        # the file browser closed, so outputs get the width a notebook has on a laptop screen
        current = self.page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
        if current.count():
            current.first.click()
        self.wait_idle(timeout_ms)
        return self

    def wait_idle(self, timeout_ms: int = 120_000) -> None:
        """The kernel is up and idle, and a moment more (a cell run at once is sometimes dropped)."""
        self.panel.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for(timeout=timeout_ms)
        self.page.wait_for_timeout(300)
        self.panel.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for(timeout=timeout_ms)

    def cell(self, index: int) -> Any:
        return self.panel.locator(".jp-Notebook .jp-Cell").nth(index)

    def output(self, index: int) -> Any:
        return self.cell(index).locator(".jp-OutputArea")

    def run(self, index: int, timeout_ms: int = 120_000) -> Any:
        """Click the cell's prompt, Shift+Enter, wait until it has run; returns its output area."""
        self.wait_idle(timeout_ms)
        cell = self.cell(index)
        cell.scroll_into_view_if_needed()
        prompt = cell.locator(".jp-InputArea-prompt").first
        before = prompt.inner_text().strip()
        for attempt in range(2):
            cell.locator(".jp-InputPrompt").first.click()
            self.page.keyboard.press("Shift+Enter")
            if self._finished(prompt, before, 5_000 if attempt == 0 else timeout_ms, started_only=attempt == 0):
                break
        if not self._finished(prompt, before, timeout_ms):
            shot = self.lab.scratch.parent / f"wb-lab-timeout-{os.getpid()}.png"
            self.page.screenshot(path=str(shot))
            raise TimeoutError(f"cell {index} did not finish within {timeout_ms / 1000:.0f} s (prompt "
                               f"{prompt.inner_text()!r}; screenshot {shot})")
        self.wait_idle(timeout_ms)
        return self.output(index)

    def _finished(self, prompt: Any, before: str, timeout_ms: int, started_only: bool = False) -> bool:
        """Wait until the prompt moved on from `before` ([*] counts when only a start is asked for)."""
        deadline = time.monotonic() + timeout_ms / 1000
        while time.monotonic() < deadline:
            text = prompt.inner_text().strip()
            if text != before and (started_only or "*" not in text) and text != "[ ]:":
                return True
            self.page.wait_for_timeout(100)
        return False
