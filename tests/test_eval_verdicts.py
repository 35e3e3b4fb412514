"""The gate's statistics, validated by simulation, and plan(): sample sizes, tests, Holm, McNemar.

The simulations call `verdicts.decide`, the function gate() decides with (one row there, thousands here), and
one test checks that gate() on simulated evaluations reaches exactly the decisions of the simulation. Run with
-s to see the figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench
from workbench.errors import ConfigError
from workbench.evals.planning import rows_needed
from workbench.evals.result import EvalResult
from workbench.evals.verdicts import decide, holm, min_detectable_effect

pytestmark = pytest.mark.usefixtures("module_mlflow_store")


ALPHA = 0.05  # the gate's default confidence 0.95: 2.5 % per direction
REPS = 10_000  # seeded; the Monte Carlo error of a rate near 5 % is then 0.2 points


def result(scores: dict[str, np.ndarray], model: str = "m", keys: list[str] | None = None,
           extra: dict[str, np.ndarray] | None = None) -> EvalResult:
    """An EvalResult made of given scores (no model call): what gate() and plan() read."""
    n = len(next(iter(scores.values())))
    table = pd.DataFrame({"row_key": keys or [f"k{i}" for i in range(n)], "model": model, **scores, **(extra or {})})
    return EvalResult(table, [model], list(scores), "sim", "digest")


def aa_deltas(rng: np.random.Generator, reps: int, n: int, shift: float = 0.0) -> np.ndarray:
    """Paired scores of two arms with shared row difficulty (like token_f1 on one golden set)."""
    difficulty = rng.normal(0.6, 0.2, size=(reps, n))
    baseline = difficulty + rng.normal(0, 0.15, size=(reps, n))
    candidate = difficulty + shift + rng.normal(0, 0.15, size=(reps, n))
    return candidate - baseline


@pytest.mark.parametrize("n", [50, 200])
def test_aa_false_alarm_rate_is_alpha(n):
    from scipy.stats import t

    deltas = aa_deltas(np.random.default_rng(n), REPS, n)
    decision = decide(deltas)  # superiority at margin 0, confidence 0.95: what gate() runs by default
    better = decision.p <= ALPHA / 2  # the gate would PASS a candidate that is no better
    worse = decision.p_worse <= ALPHA / 2  # the gate would flag a regression that is not there
    rate = float((better | worse).mean())
    exact = deltas.mean(axis=1) / (deltas.std(axis=1, ddof=1) / n ** 0.5)  # normal data: a t-test is exact
    reference = float((abs(exact) > t.ppf(1 - ALPHA / 2, n - 1)).mean())
    print(f"\nA/A n={n}, {REPS} seeded reps: the gate's false alarms {rate:.2%} (false PASS {better.mean():.2%}, "
          f"false regression {worse.mean():.2%}); alpha {ALPHA:.0%}; an exact t-test on the same draws {reference:.2%}")
    assert abs(rate - ALPHA) <= 0.01
    assert abs(better.mean() - ALPHA / 2) <= 0.01 and abs(worse.mean() - ALPHA / 2) <= 0.01


def test_a_true_difference_of_the_planned_size_is_found_at_the_planned_power():
    rng = np.random.default_rng(7)
    pilot = aa_deltas(rng, 1, 2000)[0]  # a large pilot: plan() reads the spread of paired differences from it
    base = rng.normal(0.6, 0.2, 2000)
    planned = workbench.plan("token_f1", baseline=result({"token_f1": base}),
                             candidate=result({"token_f1": base + pilot}), mde=0.05, power=0.8, alpha=ALPHA)
    assert planned.correlation_observed and 0.2 < planned.sd_delta < 0.23
    n = planned.rows_needed
    decision = decide(aa_deltas(np.random.default_rng(8), REPS, n, shift=0.05))
    power = float((decision.p <= ALPHA / 2).mean())
    print(f"\npower: plan() asks {n} rows for mde 0.05 at 80 % power (sd of the difference "
          f"{planned.sd_delta:.3f}); {REPS} seeded reps with a true +0.05 detected {power:.2%}")
    assert power >= 0.8 - 0.03


def test_gate_decides_exactly_as_the_simulation_does():
    deltas = aa_deltas(np.random.default_rng(3), 30, 50, shift=0.03)
    decision = decide(deltas)
    for i in range(len(deltas)):
        base = np.linspace(0.2, 0.8, 50)
        verdict = workbench.gate(result({"f1": base + deltas[i]}), result({"f1": base}), metric="f1", log=False)
        assert verdict.passed == bool(decision.p[i] <= ALPHA / 2)
        assert verdict.regression == bool(decision.p_worse[i] <= ALPHA / 2)
        assert verdict.ci_low == pytest.approx(decision.low[i]) and verdict.n == 50


def test_plan_rows_and_minimum_detectable_effect():
    assert rows_needed(0.2, 0.05) in range(125, 130)  # (1.96 + 0.84)^2 * (0.2 / 0.05)^2 = 125.6, plus t's tails
    assert min_detectable_effect(0.2, rows_needed(0.2, 0.05)) <= 0.05
    rng = np.random.default_rng(0)
    base = result({"token_f1": rng.uniform(0, 1, 40)})
    plan = workbench.plan("token_f1", baseline=base, mde=0.1)
    assert plan.rows_available == 40 and not plan.correlation_observed and plan.correlation == 0
    assert plan.sd_delta == pytest.approx(plan.sd_baseline * 2 ** 0.5)
    assert plan.mde_available > 0.1 and not plan.enough and "more needed" in str(plan)
    assert workbench.plan("token_f1", baseline=base, mde=0.1, correlation=0.5).rows_needed < plan.rows_needed
    with pytest.raises(ConfigError, match="mde=0"):
        workbench.plan("token_f1", baseline=base, mde=0)
    with pytest.raises(ConfigError, match="no 'nope' scores"):
        workbench.plan("nope", baseline=base)


def test_plan_runs_the_baseline_from_a_golden_dataset_and_a_model():
    data = pd.DataFrame({"input": [f"q{i}" for i in range(12)],
                         "expected": [f"q{i}" if i % 3 else "other" for i in range(12)]})
    plan = workbench.plan("exact_match", baseline=data, model="fake/echo", mde=0.2)
    assert plan.rows_available == 12 and plan.baseline_mean == pytest.approx(8 / 12)
    assert plan.rows_needed > 12 and plan.mde_available > 0.2


def test_non_inferiority_and_equivalence():
    base = np.linspace(0.3, 0.9, 200)
    wiggle = np.random.default_rng(1).normal(0, 0.02, 200)
    close = result({"f1": base - 0.005 + wiggle})
    old = result({"f1": base})
    assert not workbench.gate(close, old, metric="f1", log=False)  # not better
    ni = workbench.gate(close, old, metric="f1", test="non_inferiority", margin=0.02, log=False)
    assert ni.passed and ni.test == "non_inferiority" and "non-inferior within margin 0.020" in str(ni)
    eq = workbench.gate(close, old, metric="f1", test="equivalence", margin=0.02, log=False)
    assert eq.passed and "equivalent within +-0.020" in str(eq) and eq.mde == eq.mde
    far = result({"f1": base - 0.05 + wiggle})
    assert not workbench.gate(far, old, metric="f1", test="equivalence", margin=0.02, log=False)
    lost = workbench.gate(far, old, metric="f1", test="non_inferiority", margin=0.02, log=False)
    assert not lost and lost.regression and "a regression is detected" in lost.reason
    with pytest.raises(ConfigError, match="needs margin > 0"):
        workbench.gate(close, old, metric="f1", test="equivalence")
    with pytest.raises(ConfigError, match="test='better'"):
        workbench.gate(close, old, metric="f1", test="better", margin=0.1)


def test_several_metrics_holm_and_the_deciding_metric():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    rng = np.random.default_rng(2)
    base = rng.uniform(0.2, 0.8, 100)
    new = result({"a": base + 0.1 + rng.normal(0, 0.05, 100), "b": base + rng.normal(0, 0.05, 100)})
    old = result({"a": base, "b": base})
    verdict = workbench.gate(new, old, metric=["a", "b"], log=False)
    assert not verdict and verdict.metric == "b" and len(verdict.metrics) == 2
    assert verdict.metrics[0].passed and not verdict.metrics[1].passed
    assert "decided by b of 2 metrics, Holm-corrected" in str(verdict)
    assert verdict.metrics[0].p_adjusted >= verdict.metrics[0].p_value
    assert "<table>" in verdict._repr_html_()


def test_binary_scores_get_mcnemar_and_flips():
    old = np.array([1, 1, 0, 0, 1, 0, 1, 0] * 5, dtype=float)
    new = old.copy()
    new[[2, 3, 5, 7, 10, 11, 13]] = 1  # seven fail -> pass
    new[[0]] = 0  # one pass -> fail
    verdict = workbench.gate(result({"exact_match": new}), result({"exact_match": old}), metric="exact_match",
                             log=False)
    assert verdict.flips == {"pass->fail": 1, "fail->pass": 7, "pass->pass": 19, "fail->fail": 13}
    assert verdict.mcnemar_p == pytest.approx(0.0703125)  # 2 * P(X <= 1 | Bin(8, 1/2))
    assert "McNemar exact p 0.0703" in verdict.reason
    # the bootstrap decides (as the gate always has); the exact one-sided p (0.035) is shown beside it
    assert verdict and "on its own the exact test would not yet call it better" in verdict.reason
    assert "pass-&gt;fail 1, fail-&gt;pass 7" in verdict._repr_html_()


def test_judge_noise_widens_the_interval():
    rng = np.random.default_rng(4)
    base = rng.uniform(1, 5, 60)
    new = base + 0.3 + rng.normal(0, 0.3, 60)
    quiet = workbench.gate(result({"s": new}), result({"s": base}), metric="s", log=False)
    extra = {"s_sd": np.full(60, 1.0), "s_k": np.full(60, 3.0)}
    noisy = workbench.gate(result({"s": new}, extra=extra), result({"s": base}, extra=extra), metric="s", log=False)
    assert noisy.judge_noise_sd == pytest.approx((2 * 60 / 3) ** 0.5 / 60)
    assert noisy.ci_high - noisy.ci_low > quiet.ci_high - quiet.ci_low
    assert "judge noise" in noisy.reason


def test_cli_gate_one_line_exit_code_and_the_verdict_in_mlflow(tmp_path, capsys):
    import mlflow
    from workbench.cli import main
    from workbench.providers import fake

    path = tmp_path / "qa.jsonl"
    path.write_text("".join(f'{{"input": "q{i}", "expected": "q{i}"}}\n' for i in range(30)), encoding="utf-8")
    assert main(["eval", "--dataset", str(path), "-m", "fake/echo", "-s", "exact_match,token_f1"]) == 0
    baseline = capsys.readouterr().out.split("run_id ")[1].split()[0]
    fake.enqueue(["q0", "q1", "no"] + [f"q{i}" for i in range(3, 30)])  # one row lost
    code = main(["eval", "--dataset", str(path), "-m", "fake/script", "-c", "1", "-s", "exact_match,token_f1",
                 "--baseline", baseline, "--gate", "--test", "non_inferiority", "--margin", "0.3",
                 "--metric", "exact_match,token_f1"])
    out = capsys.readouterr().out
    line = out.strip().splitlines()[-1]
    assert code == 0 and line.startswith("PASS: ") and "test non_inferiority, margin 0.300" in line, out
    assert "MDE" in line and "of 2 metrics, Holm-corrected" in line and "regression" not in line
    candidate = out.split("run_id ")[1].split()[0]
    run = mlflow.get_run(candidate)
    assert run.data.params["gate.test"] == "non_inferiority" and run.data.metrics["gate/passed"] == 1.0
    assert "gate/exact_match/mde" in run.data.metrics and run.data.tags["workbench.gate"] == line
    verdict = json.loads(Path(mlflow.artifacts.download_artifacts(run_id=candidate, artifact_path="verdict.json"))
                         .read_text())
    assert verdict["passed"] and verdict["test"] == "non_inferiority" and len(verdict["metrics"]) == 2
    fake.enqueue(["no"] * 30)
    code = main(["eval", "--dataset", str(path), "-m", "fake/script", "-c", "1", "--baseline", baseline, "--gate",
                 "--test", "equivalence", "--margin", "0.1", "--metric", "exact_match"])
    assert code == 1 and capsys.readouterr().out.strip().splitlines()[-1].startswith("FAIL: exact_match delta")
