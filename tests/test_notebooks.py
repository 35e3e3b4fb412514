"""Every course notebook runs top to bottom, offline, in a fresh kernel (nbclient), as `make demo` runs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from workbench.demo import execute_notebook, notebooks_dir, shown_errors, unexpected_errors

NOTEBOOKS = sorted(notebooks_dir().glob("*.ipynb"))

# What the saved outputs must show, per notebook (each notebook is executed once).
EXPECTED = {
    "01_quickstart.ipynb": [
        "local/smollm2 · ",  # the bundled model answered, with its footer
        "── local/smollm2 ──",  # two models side by side
        "── fake/echo ──",
        "fallback: fake/fail failed",
        "route support-bot",
        "cache hit",
        "BudgetExceeded: refused: the budget for project=sandbox",
        "quickstart",  # spend by project
    ],
    "03_golden_and_evals.ipynb": [
        "PASS: exact_match delta +0.417",  # the regression gate, with its test and MDE
        "MDE 0.457 at 80% power",
        "paired rows detect a difference of 0.050",  # plan()
        "non-inferior within margin 0.100",  # the cheaper bot
        "not shown equivalent within +-0.100",
        "of 3 metrics, Holm-corrected",
        "within_row_sd",  # judge repeats: the judge's self-agreement
        "logprobs: <Calibration local/smollm2 on 6 rows",  # no unreadable answer in logprobs mode
    ],
    "05_finetune.ipynb": [
        "sft pirate-support: step 16/16",  # the live progress view's final state
        "PASS: house_style delta +1.000",  # re-evaluated on the golden set and gated
        "Ahoy!",  # the adapter answers in the house style through %%llm
        "dpo pirate-dpo: step 3/3",  # %finetune dpo
    ],
    "07_team.ipynb": [
        "created endpoint chat (old 1, fallback smol)",  # workbench team apply
        "no changes",  # ... is idempotent
        "team/chat",  # %llm models lists the team endpoint
        "team/chat · ",  # the %%llm cell answered through the team gateway, with its footer
        "refused",  # alice's loop ends on her budget
        "BudgetExceeded: team/chat refused by your budget (alice)",  # one red line in the cell
        "alice: ",  # her traces, found by user
    ],
    "06_rollout.ipynb": [
        "10% to candidate",
        "users moved, all to the candidate: {'candidate'}",  # sticky assignment
        "promoted - <Rollout 'support' promoted",
    ],
}


# The red lines each notebook shows on purpose (its cells carry the matching expect-error: tag).
EXPECTED_ERRORS = {"01_quickstart.ipynb": ["BudgetExceeded"], "07_team.ipynb": ["BudgetExceeded"]}


def _texts(notebook: Any) -> str:
    """The text/plain of every output, as the saved notebook holds it."""
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                texts.append(output["text"])
            elif "data" in output:
                texts.append(output["data"].get("text/plain", ""))
    return "\n".join(texts)


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.model
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_offline(path: Path, tmp_path: Path, workbench_home: Path) -> None:
    # as a student runs it: traces go to the MLflow store (the suite keeps them in memory by default)
    executed = execute_notebook(path, tmp_path / path.name,
                                env={"WORKBENCH_HOME": str(workbench_home), "WORKBENCH_TRACING": "on"})
    outputs = [o for cell in executed.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    # a failing magic shows a red display output, not an error output: those fail too, unless the cell's
    # tags expect them ("expect-error:BudgetExceeded", 01's budget lesson)
    assert unexpected_errors(executed) == []
    assert [e.error for e in shown_errors(executed)] == EXPECTED_ERRORS.get(path.name, [])
    text = _texts(executed)
    for needle in EXPECTED.get(path.name, []):
        assert needle in text, needle
    # every %%llm output has a plain-text form and its metadata, so headless runs and exports read well
    for output in outputs:
        if "workbench" in (output.get("metadata") or {}):
            assert "text/plain" in output["data"] and "text/html" in output["data"]


def test_a_red_line_fails_the_check_unless_the_cell_tag_expects_it() -> None:
    """Issue 12 item 4: a WorkbenchError is a display output (one red line), which nbclient lets pass."""
    import nbformat

    import workbench as wb
    from workbench.notebook import display as show

    def cell(outputs: list[tuple[dict, dict]], tags: list[str] | None = None) -> Any:
        made = nbformat.v4.new_code_cell("%%llm -m fake/fail\nhi", metadata={"tags": tags} if tags else {})
        made.outputs = [nbformat.v4.new_output("display_data", data=d, metadata=m) for d, m in outputs]
        return made

    refused = show.error_bundle(wb.BudgetExceeded("refused: the budget is $0.0002", budget_usd=2e-4))
    down = show.Column("fake/fail", state="error", error=wb.ProviderError("fake/fail failed after 3 attempt(s)"))
    fine = show.Column("fake/echo", state="done", text="hi")
    notebook = nbformat.v4.new_notebook(cells=[
        cell([refused], ["expect-error:BudgetExceeded"]),
        cell([show.render([down], "markdown")]),
        cell([show.render([fine, down], "markdown")]),  # one column of several failed
        cell([refused], ["expect-error:ProviderError"]),  # a tag for another error does not cover it
        cell([show.render([fine], "markdown")]),
    ])
    assert [(e.cell, e.error, e.expected) for e in shown_errors(notebook)] == [
        (0, "BudgetExceeded", True), (1, "ProviderError", False), (2, "ProviderError", False),
        (3, "BudgetExceeded", False)]
    unexpected = unexpected_errors(notebook)
    assert len(unexpected) == 3 and "ProviderError: fake/fail failed after 3 attempt(s)" in unexpected[0]
