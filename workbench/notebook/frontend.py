"""What the JupyterLab extension asks the kernel: the status bar's spend and the MLflow UI's address.

The extension evaluates `status_json()` / `mlflow_ui_json()` as `user_expressions` of a silent execute
request (no history, no output, no `[n]`, no pre_run_cell event), after a `%%llm` output arrives and when
a notebook's kernel becomes idle. Nothing needs registering for that to work. `register(ipython)` (called
by `%load_ext workbench` when this module is listed in OPTIONAL_MAGIC_MODULES) adds a gateway observer so
every call of this kernel counts (workbench.complete from code, evaluations), not only `%%llm` cells.

Both functions return JSON text, so the extension reads a plain string and never a Python repr.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

__all__ = ["status", "status_json", "mlflow_ui_json", "register", "unregister"]

_lock = threading.Lock()
_counted = {"calls": 0, "cost_usd": 0.0, "unpriced": 0}
_observing = False


def _observe(record: Any) -> None:
    """Gateway observer: one finished call (answered or failed) of this kernel."""
    response = getattr(record, "response", None)
    cost = getattr(response, "cost_usd", None) if response is not None else None
    with _lock:
        _counted["calls"] += 1
        if cost is not None:
            _counted["cost_usd"] += float(cost)
        elif response is not None and not getattr(response, "cache_hit", False):
            _counted["unpriced"] += 1
    return None


def register(ipython: Any) -> None:
    global _observing
    from workbench.gateway import hooks

    hooks.add_observer(_observe)
    _observing = True


def unregister(ipython: Any) -> None:
    global _observing
    from workbench.gateway import hooks

    hooks.remove_observer(_observe)
    _observing = False


def _from_history() -> dict[str, Any] | None:
    """Without the observer: this shell's `%%llm` calls, from the magic's session history."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    magics = shell.magics_manager.registry.get("LLMMagics") if shell is not None else None
    session = getattr(magics, "session", None)
    if session is None:
        return None
    calls, cost, unpriced = 0, 0.0, 0
    for entry in session.entries:
        calls += 1
        response = entry.response
        if response is not None and response.cost_usd is not None:
            cost += response.cost_usd
        elif response is not None and not response.cache_hit:
            unpriced += 1
    return {"calls": calls, "cost_usd": cost, "unpriced": unpriced}


def _budget() -> dict[str, Any] | None:
    """The global budget, else the tag budget closest to its limit; None when none is set. Only once the
    ledger is open (a call was made): asking must never create a store."""
    if "workbench.gateway.stores" not in sys.modules:
        return None
    from workbench.gateway import stores

    ledger = stores.ledger()
    rows = []
    for budget in ledger.budgets():
        spent = ledger.spent_usd(budget.tag, since=budget.since)
        rows.append({"scope": budget.scope, "usd": budget.usd, "spent_usd": spent, "left_usd": budget.usd - spent})
    if not rows:
        return None
    return next((r for r in rows if r["scope"] == "global"), min(rows, key=lambda r: r["left_usd"]))


def status() -> dict[str, Any] | None:
    """This kernel's calls and spend (USD), and the budget when one is set; None before `%load_ext workbench`."""
    if "workbench.notebook.extension" not in sys.modules:
        return None
    if _observing:
        with _lock:
            counted: dict[str, Any] | None = dict(_counted)
    else:
        counted = _from_history()
    if counted is None:
        return None
    try:
        budget = _budget()
    except Exception:  # a broken ledger must not break the status bar; the next call will say why
        budget = None
    return {**counted, "cost_usd": round(counted["cost_usd"], 10), "budget": budget}


def status_json() -> str:
    return json.dumps(status())


def mlflow_ui_json() -> str:
    """Start (or reuse) the MLflow UI for the current store: {"url": ...} or {"error": "one line"}."""
    from workbench.errors import WorkbenchError
    from workbench.tracking.ui import start_ui

    try:
        server = start_ui()
    except WorkbenchError as exc:
        return json.dumps({"error": f"{type(exc).__name__}: {exc}"})
    return json.dumps({"url": server.url, "store": server.store})
