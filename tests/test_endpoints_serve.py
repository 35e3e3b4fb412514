"""Your own endpoint, for real: `transformers serve` (an OpenAI-compatible server nobody here wrote) on the bundled
SmolLM2 weights, started on a free loopback port and declared in an endpoints file like a team's vLLM box.

Slow: the server loads the model (~15 s on 2 busy cores) and generates a few tokens per call.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from workbench import tracing
from workbench.gateway import endpoint_registry

pytestmark = [pytest.mark.slow, pytest.mark.model]  # transformers serve loads SmolLM2

_READY_TIMEOUT_S = 240.0  # model load on 2 shared cores; the server's own log is shown when it is exceeded


def _smollm2_folder() -> Path:
    """The converted SmolLM2 in the per-user model cache, prepared by our own provider when it is not there yet."""
    from workbench.providers.local.weights import load_base, locate

    found = locate("smollm2")
    if found.kind != "cache":
        load_base("smollm2")  # converts the bundled GGUF into the cache, once per user
        found = locate("smollm2")
    assert found.kind == "cache", f"SmolLM2 could not be prepared: {found}"
    return Path(found.where)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _transformers_cli() -> str:
    beside = Path(sys.executable).with_name("transformers")
    found = str(beside) if beside.exists() else shutil.which("transformers")
    assert found, "the transformers CLI is missing: pip install -c constraints.txt -e '.[dev]'"
    return found


class Served:
    def __init__(self, folder: Path, log: Path) -> None:
        self.folder = folder
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}/v1"
        self.log = log
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [_transformers_cli(), "serve", "--host", "127.0.0.1", "--port", str(self.port), str(folder)],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"transformers serve exited ({self.process.returncode}): {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()
        pytest.fail(f"transformers serve not ready after {_READY_TIMEOUT_S:.0f} s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=20)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    server = Served(_smollm2_folder(), tmp_path_factory.mktemp("serve") / "serve.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
def smol(served, tmp_path, monkeypatch):
    """An endpoints file naming the server `smol`, with a fallback, in the project's workbench.yaml form."""
    path = tmp_path / "workbench.yaml"
    path.write_text(
        "model_list:\n"
        "  - model_name: smol\n"
        "    litellm_params:\n"
        f"      model: openai/{served.folder}\n"  # transformers serve is pinned: requests name its folder
        f"      api_base: {served.base}\n"
        "      timeout: 300\n"
        "router_settings:\n"
        '  fallbacks: [{"smol": ["fake/echo"]}]\n'
    )
    monkeypatch.setenv("WORKBENCH_ENDPOINTS", str(path))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # a server that checks no key needs none of ours
    yield served
    endpoint_registry.reset()


def test_llm_cell_answers_streams_caches_and_traces_through_the_endpoint(smol, ip):
    ip.run_cell_magic("llm", "-m smol --max-tokens 4 --temperature 0 -o first", "What is the capital of France?")
    first = ip.user_ns["first"]
    assert first.text.strip() and first.model_used == "smol" and not first.cache_hit
    assert first.completion_tokens > 0 and first.cost_usd is None  # unpriced: a server of our own
    root = tracing.get_trace(first.trace_id).root
    assert root.name == "smol" and root.status == "OK" and root.attributes["model_used"] == "smol"

    ip.run_cell_magic("llm", "-m smol --max-tokens 4 --temperature 0 -o again", "What is the capital of France?")
    again = ip.user_ns["again"]
    assert again.cache_hit and again.text == first.text

    ip.run_cell_magic("llm", "-m smol --max-tokens 4 --temperature 0 --stream -o streamed", "Say hello.")
    streamed = ip.user_ns["streamed"]
    assert streamed.text.strip() and streamed.model_used == "smol" and streamed.completion_tokens > 0
    assert tracing.get_trace(streamed.trace_id).root.attributes["model_used"] == "smol"

    table = ip.run_line_magic("llm", "models")
    assert smol.base in table.loc["smol", "target"] and "unpriced" in table.loc["smol", "target"]


def test_server_stopped_the_fallback_answers_and_the_failed_attempts_are_traced(smol, ip):
    smol.stop()  # the last test of the module: the fixture's teardown finds it stopped
    ip.run_cell_magic("llm", "-m smol --max-tokens 4 --no-cache -o fell", "Are you there?")
    fell = ip.user_ns["fell"]
    assert fell.fell_back and fell.model_used == "fake/echo" and fell.text == "Are you there?"
    assert fell.attempts and all(a.model == "smol" for a in fell.attempts)
    spans = tracing.get_trace(fell.trace_id).spans
    failed = [s for s in spans if s.status == "ERROR"]
    assert len(failed) == len(fell.attempts) and all("smol" in s.name for s in failed)
