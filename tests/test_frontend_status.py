"""What the JupyterLab extension asks the kernel (workbench/notebook/frontend.py), without a browser.

The extension evaluates these as silent `user_expressions`; tests/browser checks the whole loop.
"""

from __future__ import annotations

import json
import sys

import pytest
from IPython.core.interactiveshell import InteractiveShell

from workbench.notebook import frontend

STATUS_EXPRESSION = ("__import__('workbench.notebook.frontend', fromlist=['_']).status_json() "
                     "if 'workbench.notebook' in __import__('sys').modules else 'null'")


@pytest.fixture(autouse=True)
def fresh_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(frontend, "_counted", {"calls": 0, "cost_usd": 0.0, "unpriced": 0})


def test_no_status_before_the_extension_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "workbench.notebook.extension", raising=False)
    assert frontend.status() is None
    assert frontend.status_json() == "null"


def test_status_counts_every_call_of_the_kernel_and_shows_the_budget(ip: InteractiveShell) -> None:
    import workbench

    ip.run_cell("%%llm -m fake/echo\nhello there")
    workbench.complete("a call from code, not a cell", "fake/echo", cache=False)
    status = frontend.status()
    assert status is not None and status["calls"] == 2
    assert status["cost_usd"] > 0 and status["unpriced"] == 0 and status["budget"] is None
    workbench.set_budget(5.0)
    budget = frontend.status()["budget"]
    assert budget["scope"] == "global" and budget["usd"] == 5.0
    assert budget["left_usd"] == pytest.approx(5.0 - budget["spent_usd"])


def test_the_extensions_expression_answers_json_text(ip: InteractiveShell) -> None:
    """Exactly what the extension sends: its result's text/plain is the repr of a JSON string."""
    ip.run_cell("%%llm -m fake/echo\nhi")
    answer = ip.user_expressions({"value": STATUS_EXPRESSION})["value"]
    assert answer["status"] == "ok"
    text = answer["data"]["text/plain"]
    assert json.loads(eval(text))["calls"] == 1  # noqa: S307 - the repr of a str, from our own function


def test_the_reply_carries_application_json_for_the_extension(ip: InteractiveShell, monkeypatch) -> None:
    """The extension reads application/json (a real JSON value), never a Python repr."""
    ip.run_cell("%%llm -m fake/echo\nhi")
    answer = ip.user_expressions({"value": STATUS_EXPRESSION})["value"]
    assert answer["data"]["application/json"]["value"]["calls"] == 1
    expression = "__import__('workbench.notebook.frontend', fromlist=['_']).mlflow_ui_json()"
    from workbench.tracking import ui

    monkeypatch.setattr(ui, "start_ui", lambda: ui.UIServer("http://127.0.0.1:5001", "sqlite:///x"))
    answer = ip.user_expressions({"value": expression})["value"]
    assert answer["data"]["application/json"] == {"value": {"url": "http://127.0.0.1:5001", "store": "sqlite:///x"}}


def test_without_the_observer_the_history_of_llm_cells_counts(ip: InteractiveShell, monkeypatch) -> None:
    monkeypatch.setattr(frontend, "_observing", False)
    ip.run_cell("%%llm -m fake/echo\none")
    ip.run_cell("%%llm -m fake/echo\ntwo")
    assert frontend.status()["calls"] == 2


def test_mlflow_ui_json_reports_a_url_or_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.errors import StoreError
    from workbench.tracking import ui

    monkeypatch.setattr(ui, "start_ui", lambda: ui.UIServer("http://127.0.0.1:5001", "sqlite:///x"))
    assert json.loads(frontend.mlflow_ui_json()) == {"url": "http://127.0.0.1:5001", "store": "sqlite:///x"}

    def broken() -> None:
        raise StoreError("cannot open the MLflow store")

    monkeypatch.setattr(ui, "start_ui", broken)
    assert json.loads(frontend.mlflow_ui_json()) == {"error": "StoreError: cannot open the MLflow store"}
