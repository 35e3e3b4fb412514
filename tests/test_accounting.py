"""Cost ledger, prices and budgets."""

from __future__ import annotations

import warnings

import pytest

import workbench as wb


def test_spend_by_tag_and_by_model():
    wb.complete("one two", "fake/echo", tags={"project": "alpha"})
    wb.complete("one two", "fake/echo", tags={"project": "alpha"})  # cache hit: a row at cost 0
    wb.complete("three four five", "fake/echo", tags={"project": "beta"})
    wb.complete("untagged call", "fake/echo")
    by_project = wb.spend(by="project")
    assert by_project.loc["alpha", "calls"] == 2 and by_project.loc["alpha", "cache_hits"] == 1
    assert by_project.loc["alpha", "cost_usd"] == pytest.approx((2 * 1 + 2 * 2) / 1e6)
    assert by_project.loc["beta", "cost_usd"] == pytest.approx((3 + 6) / 1e6)
    assert by_project.loc["(untagged)", "calls"] == 1
    by_model = wb.spend()
    assert by_model.loc["fake/echo", "calls"] == 4
    assert by_model["cost_usd"].sum() == pytest.approx(by_project["cost_usd"].sum())


def test_spend_rejects_a_bad_tag_name():
    # any key a call accepts is a good key (see test_budget_money.py); only a non-string or empty one is bad
    with pytest.raises(wb.ConfigError, match="tag key ' '"):
        wb.spend(by=" ")
    with pytest.raises(wb.ConfigError, match="tag key 5"):
        wb.spend(by=5)


def test_set_price_overrides_and_unknown_price_warns_once(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0000000000000000")
    model = "openai/workbench-unknown-model"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r1 = wb.complete("a b c", model, mock_response="x y", cache=False)
        r2 = wb.complete("a b c", model, mock_response="x y", cache=False)
    assert r1.cost_usd is None and r2.cost_usd is None and r1.text == "x y"
    assert sum("no price known" in str(w.message) for w in caught) == 1
    assert wb.spend().loc[model, "unpriced_calls"] == 2
    wb.set_price(model, input_per_1m=1000, output_per_1m=2000)
    r3 = wb.complete("a b c", model, mock_response="x y", cache=False)
    assert r3.cost_usd == pytest.approx((r3.prompt_tokens * 1000 + r3.completion_tokens * 2000) / 1e6)
    wb.set_price("fake/echo", input_per_1m=0, output_per_1m=0)
    assert wb.complete("free now", "fake/echo").cost_usd == 0


@pytest.mark.parametrize("kwargs", [{"input_per_1m": -1, "output_per_1m": 1},
                                    {"input_per_1m": "1", "output_per_1m": 1}])
def test_bad_prices_are_refused(kwargs):
    with pytest.raises(wb.ConfigError, match="input_per_1m="):
        wb.set_price("fake/echo", **kwargs)


def test_budget_refuses_before_sending_and_says_how_to_raise():
    wb.set_budget(usd=0.00002, tag=("project", "demo"))
    wb.complete("first call here", "fake/echo", tags={"project": "demo"})  # 3+3 tokens: $0.000009
    wb.complete("second call here", "fake/echo", tags={"project": "demo"})  # $0.000018 spent
    with pytest.raises(wb.BudgetExceeded) as err:
        wb.complete("third call would go over " * 3, "fake/echo", tags={"project": "demo"})
    message = str(err.value)
    assert "project=demo" in message and "$0.00002" in message and "$0.000018" in message
    assert "set_budget(usd=..., tag=('project', 'demo'))" in message
    assert err.value.spent_usd == pytest.approx(0.000018)
    # refused calls are not sent: recorded as refused, at no cost
    demo = wb.spend(by="project").loc["demo"]
    assert (demo["calls"], demo["answered"], demo["refused"]) == (3, 2, 1)
    assert demo["cost_usd"] == pytest.approx(0.000018)
    # other tags are not limited; a cache hit is free and never refused
    wb.complete("third call would go over " * 3, "fake/echo", tags={"project": "other"})
    assert wb.complete("first call here", "fake/echo", tags={"project": "demo"}).cache_hit
    # raising the budget lets calls through
    wb.set_budget(usd=1.0, tag=("project", "demo"))
    assert wb.complete("now allowed", "fake/echo", tags={"project": "demo"}).text == "now allowed"


def test_global_budget_and_removal():
    wb.set_budget(usd=0)
    with pytest.raises(wb.BudgetExceeded, match="global budget"):
        wb.complete("anything", "fake/echo")
    wb.set_budget(usd=None)
    assert wb.complete("anything", "fake/echo").text == "anything"


@pytest.mark.parametrize("usd,tag", [(-1, None), ("5", None), (5, ("project",)), (5, "project=demo")])
def test_bad_budgets_are_refused(usd, tag):
    with pytest.raises(wb.ConfigError):
        wb.set_budget(usd=usd, tag=tag)


def test_budgets_persist_in_the_home(workbench_home):
    from workbench.gateway import stores

    wb.set_budget(usd=3.5, tag=("team", "ml"))
    stores.reset()
    assert [(b.usd, b.tag) for b in wb.budgets()] == [(3.5, ("team", "ml"))]


@pytest.mark.parametrize("limit", ["ten", -1, 2.5])
def test_calls_refuses_a_bad_limit(limit):
    with pytest.raises(wb.ConfigError, match="limit="):
        wb.calls(limit)
