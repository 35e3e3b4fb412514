"""What the JupyterLab extension asks the kernel: the status bar's spend and the MLflow UI's address.

The extension evaluates `status_json()` / `mlflow_ui_json()` as `user_expressions` of a silent execute
request (no history, no output, no `[n]`, no pre_run_cell event), after a `%%llm` output arrives and when
a notebook's kernel becomes idle. `register(ipython)` (called by `%load_ext workbench`) adds a gateway
observer so every call of this kernel counts (workbench.complete from code, evaluations), not only `%%llm`
cells.

Both return a JsonReply: the extension reads its `application/json` (a real JSON value, never a Python repr
to unpick); its text/plain is the JSON text for anything else that asks.
"""

from __future__ import annotations

import json
import threading
import weakref
from typing import Any

from IPython import get_ipython

from workbench.errors import WorkbenchError
from workbench.gateway import hooks

__all__ = ["JsonReply", "status", "status_json", "mlflow_ui_json", "register", "unregister"]

_lock = threading.Lock()
_counted: dict[str, Any] = {"calls": 0, "cost_usd": 0.0, "unpriced": 0}
_observing = False
_shells: weakref.WeakSet[Any] = weakref.WeakSet()  # shells with `%load_ext workbench`
_LEDGER_FILE = "ledger.sqlite"  # gateway.stores.ledger()'s file in the home


class JsonReply(str):
    """JSON text that IPython also shows as `application/json`: a user expression's result carries both."""

    def _repr_json_(self) -> Any:
        return {"value": json.loads(self)}  # wrapped: a bare null would mean "no application/json" to IPython


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
    hooks.add_observer(_observe)
    _observing = True
    _shells.add(ipython)


def unregister(ipython: Any) -> None:
    global _observing
    hooks.remove_observer(_observe)
    _observing = False
    _shells.discard(ipython)


def _from_history() -> dict[str, Any] | None:
    """Without the observer: this shell's `%%llm` calls, from the magic's session history."""
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
    ledger exists (a call was made): asking must never create a store."""
    from workbench.config import settings  # when asked: %load_ext stays light
    from workbench.gateway import stores

    if not (settings().home / _LEDGER_FILE).exists():
        return None
    ledger = stores.ledger()
    rows: list[dict[str, Any]] = []
    for budget in ledger.budgets():
        spent = ledger.spent_usd(budget.tag, since=budget.since)
        rows.append({"scope": budget.scope, "usd": budget.usd, "spent_usd": spent, "left_usd": budget.usd - spent})
    if not rows:
        return None
    return next((r for r in rows if r["scope"] == "global"), min(rows, key=lambda r: r["left_usd"]))


def status() -> dict[str, Any] | None:
    """This kernel's calls and spend (USD), and the budget when one is set; None before `%load_ext workbench`."""
    if not _shells:
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


def status_json() -> JsonReply:
    return JsonReply(json.dumps(status()))


def mlflow_ui_json() -> JsonReply:
    """Start (or reuse) the MLflow UI for the current store: {"url": ...} or {"error": "one line"}."""
    from workbench.tracking import ui

    try:
        server = ui.start_ui()  # looked up at call time: tests stand a fake server in
    except WorkbenchError as exc:
        return JsonReply(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
    return JsonReply(json.dumps({"url": server.url, "store": server.store}))
