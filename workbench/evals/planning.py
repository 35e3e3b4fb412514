"""plan(): how many golden rows a comparison needs, and what the rows at hand can detect, before anyone runs it.

The gate's test is paired, so what matters is the spread of the per-row difference (candidate - baseline):
sd_delta^2 = sd_a^2 + sd_b^2 - 2 rho sd_a sd_b. From one evaluation we know the baseline's spread and assume
the candidate's is the same; the correlation rho of paired scores is observed when two runs exist (a
candidate run, or a two-model result), else assumed 0 (conservative: pairing usually helps). The row count
solves (t_{1-alpha/2} + t_{power}) sd_delta / sqrt(n) <= mde with Student's t, the same reading of the
interval the gate uses; `alpha` here is the gate's 1 - confidence (0.05 plans for a 95 % gate).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.errors import ConfigError
from workbench.evals.result import EvalResult
from workbench.evals.runner import evaluate
from workbench.evals.verdicts import min_detectable_effect
from workbench.verbatim import NO_MATH

if TYPE_CHECKING:
    from workbench.datasets.golden import DataLike

__all__ = ["Plan", "plan", "rows_needed"]

_MAX_ROWS = 10_000_000


@dataclass(frozen=True)
class Plan:
    """The answer of plan(): `rows_needed` for a difference of `mde`, and `mde_available` with the rows at hand."""

    metric: str
    mde: float
    power: float
    alpha: float
    rows_needed: int
    rows_available: int
    mde_available: float  # the smallest difference the golden set at hand detects at `power`
    sd_baseline: float
    correlation: float
    correlation_observed: bool
    sd_delta: float
    baseline_mean: float

    @property
    def enough(self) -> bool:
        return self.rows_available >= self.rows_needed

    def __str__(self) -> str:
        where = "observed" if self.correlation_observed else "assumed (pass candidate=... to observe it)"
        verdict = ("enough" if self.enough else f"{self.rows_needed - self.rows_available} more needed")
        return (f"{self.metric}: {self.rows_needed} paired rows detect a difference of {self.mde:.3f} with "
                f"{self.power:.0%} power at alpha {self.alpha:g}; the {self.rows_available} rows at hand detect "
                f"{self.mde_available:.3f} ({verdict}). Baseline mean {self.baseline_mean:.3f}, sd "
                f"{self.sd_baseline:.3f}; correlation of paired scores {self.correlation:.2f}, {where}; sd of the "
                f"difference {self.sd_delta:.3f}")

    def __repr__(self) -> str:
        return f"<Plan {self}>"

    def _repr_html_(self) -> str:
        color = "#2e7d32" if self.enough else "#c62828"
        return f'<div class="wb-plan {NO_MATH}" style="color:{color}">{html.escape(str(self))}</div>'


def rows_needed(sd_delta: float, mde: float, *, power: float = 0.8, alpha: float = 0.05) -> int:
    """The smallest number of paired rows whose MDE is at most `mde`."""
    if sd_delta == 0:
        return 2
    from scipy.stats import norm

    guess = max(2, int(((norm.ppf(1 - alpha / 2) + norm.ppf(power)) * sd_delta / mde) ** 2))
    n = guess
    while n < _MAX_ROWS and min_detectable_effect(sd_delta, n, confidence=1 - alpha, power=power) > mde:
        n += max(1, n // 200)  # t is close to normal there: a few steps from the normal guess
    while n > 2 and min_detectable_effect(sd_delta, n - 1, confidence=1 - alpha, power=power) <= mde:
        n -= 1
    return n


def _result(item: Any, model: str | None, metric: str, evaluate_kwargs: dict[str, Any]) -> EvalResult:
    if isinstance(item, EvalResult):
        return item
    if model is not None:  # a golden dataset (name, path, DataFrame, GoldenDataset) and a model: run the baseline
        evaluate_kwargs.setdefault("scorers", [metric])
        evaluate_kwargs.setdefault("progress", False)
        return evaluate(item, model, **evaluate_kwargs)
    if isinstance(item, str) and item.strip():
        return EvalResult.from_run(item.strip())
    raise ConfigError(f"baseline={item!r:.80} must be an EvalResult, an evaluation's run id, or a golden dataset "
                      "with model=..., e.g. plan('token_f1', baseline='support-qa', model='local/smollm2')")


def _scores(result: EvalResult, metric: str, model: str | None = None) -> Any:
    if metric not in result.scorers:
        raise ConfigError(f"the evaluation has no {metric!r} scores (it has {', '.join(result.scorers)}): pass "
                          "metric=... or evaluate with that scorer")
    part = result.table if model is None else result.table[result.table["model"] == model]
    return part.drop_duplicates("row_key").set_index("row_key")[metric].astype(float)


def plan(metric: str = "token_f1", baseline: EvalResult | DataLike | None = None, *, mde: float = 0.05,
         power: float = 0.8, alpha: float = 0.05, candidate: EvalResult | str | None = None,
         correlation: float | None = None, model: str | None = None, **evaluate_kwargs: object) -> Plan:
    """Rows needed to detect a difference of `mde` in `metric` (paired, as the gate tests), and the smallest
    difference the baseline's golden set detects. baseline: an EvalResult, a run id, or a golden dataset with
    model=... (evaluated now). candidate: a second run of the same rows, for the observed correlation (a
    two-model EvalResult as baseline also gives it); else `correlation` (default 0)."""
    for label, value, low, high in (("mde", mde, 0.0, math.inf), ("power", power, 0.5, 1.0),
                                    ("alpha", alpha, 0.0, 0.5)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not low < value < high:
            raise ConfigError(f"{label}={value!r} must be a number in ({low:g}, {high:g}), e.g. mde=0.05, power=0.8, "
                              "alpha=0.05")
    if correlation is not None and (isinstance(correlation, bool) or not isinstance(correlation, int | float)
                                    or not -1 <= correlation <= 1):
        raise ConfigError(f"correlation={correlation!r} must be a number from -1 to 1")
    if not isinstance(metric, str) or not metric:
        raise ConfigError(f"metric={metric!r} must be a scorer name, e.g. metric='token_f1'")
    base = _result(baseline, model, metric, dict(evaluate_kwargs))
    other = None
    if candidate is not None:
        other = _scores(_result(candidate, None, metric, {}) if not isinstance(candidate, EvalResult) else candidate,
                        metric)
        b = _scores(base, metric) if len(base.models) == 1 else _scores(base, metric, base.models[0])
    elif len(base.models) > 1:
        b, other = _scores(base, metric, base.models[0]), _scores(base, metric, base.models[1])
    else:
        b = _scores(base, metric)
    b = b.dropna()
    sd_b = float(b.std(ddof=1)) if len(b) > 1 else float("nan")
    observed = False
    if other is not None:
        x, y = b.align(other.dropna(), join="inner")
        if len(x) > 2:
            delta = (y - x).to_numpy()
            sd_delta = float(delta.std(ddof=1))
            rho = float(x.corr(y)) if x.std() > 0 and y.std() > 0 else 0.0
            observed = True
    if not observed:
        rho = float(correlation or 0.0)
        sd_delta = sd_b * math.sqrt(max(0.0, 2 * (1 - rho)))
    if math.isnan(sd_delta):
        raise ConfigError(f"the baseline has {len(b)} scored row(s) of {metric}: a plan needs at least 2")
    needed = rows_needed(sd_delta, float(mde), power=float(power), alpha=float(alpha))
    available = len(b)
    return Plan(metric, float(mde), float(power), float(alpha), needed, available,
                min_detectable_effect(sd_delta, available, confidence=1 - alpha, power=power), sd_b,
                0.0 if math.isnan(rho) else rho, observed, sd_delta, float(b.mean()))
