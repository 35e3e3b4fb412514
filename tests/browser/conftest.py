"""Fixtures for the browser tests: one JupyterLab server and one Chromium for the whole module.

The tests skip only when Chromium or Playwright is truly absent here (CI installs Chromium in .ci/run);
a missing or disabled labextension is a failure, not a skip: `pip install -e .` must have built it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from lab import EXTENSION, Lab, chromium_missing, open_browser, start_lab  # noqa: E402


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    reason = chromium_missing()
    if reason:
        skip = pytest.mark.skip(reason=f"browser tests skipped: {reason}")
        for item in items:
            if "tests/browser" in str(item.fspath).replace("\\", "/"):
                item.add_marker(skip)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    listed = subprocess.run([sys.executable, "-m", "jupyter", "labextension", "list"], capture_output=True,
                            text=True, timeout=120)
    lines = [line for line in (listed.stdout + listed.stderr).splitlines() if EXTENSION in line]
    assert lines and "enabled" in lines[0] and "OK" in lines[0], (
        f"the {EXTENSION} labextension is not installed and enabled (`jupyter labextension list` says "
        f"{lines or 'nothing'}): run `pip install -c constraints.txt -e '.[dev]'`, which builds it with npm")
    server = start_lab()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def page(lab: Lab) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    profiles = tempfile.TemporaryDirectory(prefix="wb-chromium-", ignore_cleanup_errors=True)
    with sync_playwright() as playwright, profiles as profile:
        context = open_browser(playwright, Path(profile))
        context.set_default_timeout(60_000)
        page = context.pages[0] if context.pages else context.new_page()
        page.errors = []  # uncaught page errors: a test can assert none came from us
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        try:
            yield page
        finally:
            context.close()
