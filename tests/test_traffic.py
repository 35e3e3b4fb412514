"""Rollouts: sticky variant assignment, variant tags on every call and trace, changes recorded in MLflow, the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import workbench as wb
from workbench.errors import ConfigError, ProviderError

BASELINE = "fake/echo"
CANDIDATE = "fake/flaky?p=0.3&seed=4"


def _client():
    from workbench.finetune.registry import client

    return client()


def test_assignment_is_sticky_per_user_and_monotone_in_the_share():
    rollout = wb.rollout("support", baseline=BASELINE, candidate="fake/slow?ms=1", percent=10)
    users = [f"user-{i}" for i in range(2000)]
    first = {u: rollout.variant_for(u) for u in users}
    assert all(rollout.variant_for(u) == first[u] for u in users[:200])  # the same user, the same variant
    share = sum(v == "candidate" for v in first.values()) / len(users)
    assert 0.07 < share < 0.13, share
    rollout.set(percent=50)
    after = {u: rollout.variant_for(u) for u in users}
    assert all(after[u] == "candidate" for u in users if first[u] == "candidate")  # nobody moves back
    assert 0.45 < sum(v == "candidate" for v in after.values()) / len(users) < 0.55
    random_share = sum(rollout.variant_for(None) == "candidate" for _ in range(2000)) / 2000
    assert 0.4 < random_share < 0.6
    rollout.rollback()
    assert {rollout.variant_for(u) for u in users[:300]} == {"baseline"} and rollout.state == "rolled_back"


def test_bad_rollouts_quote_the_value():
    with pytest.raises(ConfigError, match="percent=150"):
        wb.rollout("support", baseline=BASELINE, candidate=CANDIDATE, percent=150)
    with pytest.raises(ConfigError, match="same model"):
        wb.rollout("support", baseline=BASELINE, candidate=BASELINE)
    with pytest.raises(wb.ModelError, match="nosuch"):
        wb.rollout("support", baseline=BASELINE, candidate="nosuch")
    rollout = wb.rollout("support", baseline=BASELINE, candidate=CANDIDATE)
    with pytest.raises(ConfigError, match="percent='half'"):
        rollout.set(percent="half")


def test_calls_carry_their_variant_and_the_report_counts_them_with_feedback(tracing_on):
    rollout = wb.rollout("support", baseline=BASELINE, candidate=CANDIDATE, percent=50)
    answered: dict[str, list] = {"baseline": [], "candidate": []}
    failures = 0
    for i in range(40):
        user = f"user-{i}"
        try:
            response = wb.complete(f"question {i}", "support", tags={"user": user, "project": "help"}, cache=False)
        except ProviderError:
            failures += 1
            continue
        assert response.tags["variant"] == rollout.variant_for(user) and response.tags["rollout"] == "support"
        assert response.model_used == (CANDIDATE if response.tags["variant"] == "candidate" else BASELINE)
        answered[response.tags["variant"]].append(response)
    assert answered["baseline"] and answered["candidate"] and failures
    for response in answered["candidate"][:4]:
        wb.feedback(response, thumbs=True, stars=5)
    for response in answered["baseline"][:4]:
        wb.feedback(response, thumbs=False, stars=2)
    wb.feedback(answered["baseline"][4], thumbs=True)
    # the variant is on the trace too
    from workbench.tracking.backend import backend, current_uri

    trace = backend(current_uri()).client.get_trace(answered["candidate"][0].trace_id)
    assert trace.info.tags["variant"] == "candidate" and trace.info.tags["rollout"] == "support"

    report = wb.rollout_report("support")
    table = report.table
    assert list(table.index) == ["baseline", "candidate"]
    assert int(table["calls"].sum()) == 40
    assert table.loc["candidate", "errors"] == failures and table.loc["baseline", "errors"] == 0
    assert table.loc["candidate", "error_rate"] == pytest.approx(failures / table.loc["candidate", "calls"])
    assert table.loc["candidate", "thumbs_up_share"] == 1.0 and table.loc["candidate", "mean_stars"] == 5.0
    assert table.loc["baseline", "thumbs_up_share"] == pytest.approx(1 / 5) and table.loc["baseline", "mean_stars"] == 2
    assert table.loc["baseline", "latency_p95_ms"] >= table.loc["baseline", "latency_p50_ms"] > 0
    assert table.loc["candidate", "cost_usd"] > 0 and table.loc["baseline", "model"] == BASELINE
    assert "<img" in report._repr_html_() and "candidate" in repr(report)
    assert rollout.report().table["calls"].sum() == 40
    assert wb.rollout_report("nothing-here").table.empty


def test_every_change_is_recorded_in_mlflow():
    rollout = wb.rollout("support", baseline=BASELINE, candidate=CANDIDATE, percent=10)
    rollout.set(percent=30)
    rollout.promote()
    assert rollout.variant_for("anyone") == "candidate" and rollout.state == "promoted"
    client = _client()
    run = client.get_run(rollout.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["workbench.rollout.state"] == "promoted"
    assert run.data.params["candidate"] == CANDIDATE and run.data.params["alias"] == "support"
    assert [m.value for m in sorted(client.get_metric_history(rollout.run_id, "candidate_percent"),
                                    key=lambda m: m.step)] == [10, 30, 100]
    events = json.loads(Path(client.download_artifacts(rollout.run_id, "rollout/events.json")).read_text())
    assert [e["action"] for e in events] == ["start", "set", "promote"]
    # a new rollout under the same name replaces it
    again = wb.rollout("support", baseline=BASELINE, candidate="fake/slow?ms=1", percent=5)
    assert again.run_id != rollout.run_id and wb.traffic.get_rollout("support") is again
