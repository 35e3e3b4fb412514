"""The demo behind `make demo` / `workbench demo`: run notebooks/01_quickstart.ipynb headless, offline.

The notebook runs in a fresh kernel (nbclient) against a fresh home folder, so every run starts with an
empty cache and ledger and tells the same story; the executed copy goes to notebooks/executed/ (ignored
by git) and a short summary of the run is printed from that home's ledger and the notebook's outputs.
"""

from __future__ import annotations

import collections
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench import config
from workbench.errors import ConfigError, WorkbenchError
from workbench.gateway import accounting
from workbench.gateway.prices import format_usd
from workbench.secrets import redact

__all__ = ["run_demo", "execute_notebook", "notebooks_dir", "QUICKSTART", "ShownError", "shown_errors",
           "unexpected_errors", "EXPECT_TAG"]

QUICKSTART = "01_quickstart.ipynb"
CELL_TIMEOUT_S = 900  # the first local/ call may convert the bundled model (25+ s on a slow CPU)
_OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def notebooks_dir() -> Path:
    """notebooks/ of the checkout this package runs from, else of the working directory."""
    for root in (Path(__file__).resolve().parent.parent, Path.cwd()):
        if (root / "notebooks" / QUICKSTART).exists():
            return root / "notebooks"
    raise ConfigError(f"notebooks/{QUICKSTART} not found next to the package or in {Path.cwd()}: run from the "
                      "project root")


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    # The kernel inherits this process's environment when it starts.
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def execute_notebook(path: Path, output: Path, *, env: Mapping[str, str] | None = None,
                     timeout_s: int = CELL_TIMEOUT_S) -> Any:
    """Run every cell of `path` in a fresh kernel started in its folder; write the executed copy to `output`.

    The copy is written even when a cell fails (then the nbclient error is raised), so it can be inspected.
    """
    import nbformat  # notebook runners load only for `workbench demo` and the notebook tests
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    output.parent.mkdir(parents=True, exist_ok=True)
    # IPC sockets in a private folder: nothing listens on TCP, and the kernel has nothing to warn about.
    with tempfile.TemporaryDirectory(prefix="wb-kernel-") as sockets:
        manager = KernelManager(kernel_name="python3", transport="ipc", ip=str(Path(sockets) / "kernel"))
        client = NotebookClient(notebook, km=manager, timeout=timeout_s,
                                resources={"metadata": {"path": str(path.parent)}})
        try:
            with _environment({**_OFFLINE, **(env or {})}):
                client.execute()
        finally:
            nbformat.write(notebook, output)
            # A kernel manager we pass in is ours to stop (nbclient stops only those it made). A graceful
            # shutdown lets the kernel flush its ledger writer before the summary reads the ledger.
            if manager.has_kernel:
                manager.shutdown_kernel(now=False)
    return notebook


# A cell that shows a Workbench error on purpose (01's budget lesson) says so in its tags, e.g.
# "expect-error:BudgetExceeded"; any other red line fails the notebook tests and the demo.
EXPECT_TAG = "expect-error:"


@dataclass(frozen=True)
class ShownError:
    """One red line a magic showed: a WorkbenchError is a display output, not an error output."""

    cell: int  # index in the notebook
    cell_id: str
    error: str  # the exception class name
    text: str  # the line as shown
    expected: bool  # the cell's tags expect this error


def _errors_in(output: Any) -> list[str]:
    meta = (output.get("metadata") or {}).get("workbench") or {}
    names = [meta.get("error")] + [column.get("error") for column in meta.get("columns") or []]
    return [name for name in names if name]


def shown_errors(notebook: Any) -> list[ShownError]:
    """Every output the magics marked as a Workbench error (in its metadata), in order."""
    found = []
    for index, cell in enumerate(notebook.cells):
        tags = (cell.get("metadata") or {}).get("tags") or []
        expected = {tag[len(EXPECT_TAG):] for tag in tags if tag.startswith(EXPECT_TAG)}
        for output in cell.get("outputs", []):
            text = (output.get("data") or {}).get("text/plain", "")
            for name in _errors_in(output):
                found.append(ShownError(index, str(cell.get("id", "")), name, text, name in expected))
    return found


def unexpected_errors(notebook: Any) -> list[str]:
    """One line per red line no cell tag expects: what the notebook tests and the demo fail on."""
    return [f"cell {e.cell} ({e.cell_id}): {' '.join(e.text.split())[:300]}"
            for e in shown_errors(notebook) if not e.expected]


def _shown_errors(notebook: Any) -> collections.Counter[str]:
    """Red lines the magic showed (e.g. the budget refusal), from the outputs' metadata."""
    return collections.Counter(e.error + ("" if e.expected else " (UNEXPECTED)") for e in shown_errors(notebook))


def _summary(home: Path, notebook: Any, output: Path, seconds: float) -> str:
    config.configure(home=home)
    calls = accounting.calls()
    answered = calls[calls["status"] == "ok"]
    models = answered["model_used"].value_counts()
    failed_attempts = int(calls["failed_attempts"].sum())
    fallbacks = int(((calls["failed_attempts"] > 0) & (calls["status"] == "ok")).sum())
    errors = _shown_errors(notebook)
    lines = [
        f"Ran {output.name} headless in {seconds:.0f} s, offline, in a fresh home ({home})",
        f"  calls:        {len(calls)} ({int(answered['cache_hit'].sum())} cache hit(s), {fallbacks} answered by a "
        f"fallback after {failed_attempts} failed attempt(s))",
        "  models used:  " + ", ".join(f"{name} ({count})" for name, count in models.items()),
        f"  cost:         {format_usd(float(calls['cost_usd'].fillna(0).sum()))} "
        "(local/ models are free; fake/ stand-ins charge a made-up price)",
        "  shown errors: " + (", ".join(f"{name} x{count}" for name, count in errors.items()) or "none"),
        f"  notebook:     {output}",
    ]
    return "\n".join(lines)


def run_demo() -> int:
    """Execute the quickstart notebook and print what happened. 0 on success, 1 when a cell failed."""
    from nbclient.exceptions import CellExecutionError

    source = notebooks_dir() / QUICKSTART
    output = source.parent / "executed" / QUICKSTART
    home = config.settings().home / "demo"
    shutil.rmtree(home, ignore_errors=True)  # a fresh cache and ledger: every run tells the same story
    print(f"Running {source} with nbclient (offline; the first run converts the bundled model once)...", flush=True)
    started = time.perf_counter()
    try:
        notebook = execute_notebook(source, output, env={"WORKBENCH_HOME": str(home)})
    except CellExecutionError as exc:
        print(f"A cell failed; the partly executed notebook is {output}\n{redact(str(exc))}")
        return 1
    try:
        print(_summary(home, notebook, output, time.perf_counter() - started))
    except WorkbenchError as exc:
        print(f"The notebook ran ({output}) but its ledger could not be read: {redact(str(exc))}")
        return 1
    unexpected = unexpected_errors(notebook)
    if unexpected:
        print("A magic failed where the notebook expects no error:\n  " + "\n  ".join(unexpected))
        return 1
    return 0
