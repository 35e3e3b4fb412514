"""The gate's decision rule, vectorised: one paired test over many sets of row differences at once.

`decide()` takes a matrix of paired differences (candidate - baseline), one row per comparison, and returns the
interval, the p-value of the asked test and the p-value of a regression for each. The gate calls it with one row;
the validation tests call it with thousands of simulated ones. Same function, same numbers, so the simulated
false-alarm rate and power are those of the gate itself.

The rule: a paired bootstrap of the mean difference (rows resampled as pairs, seeded), read with Hesterberg's
*expanded percentile*: the tail levels are widened by sqrt(n/(n-1)) and Student's t, because the plain
percentile interval is too narrow on small sets (at n=50 it raises a 5 % false-alarm rate to about 6 %).
A p-value is the interval inverted: the smallest tail level at which the interval would exclude the margin.
Each one-sided test runs at (1 - confidence) / 2, so a 95 % gate claims a false improvement at most 2.5 % of
the time and a false regression at most 2.5 %: 5 % in all, the `alpha` of `plan()`.

Judge noise: with repeated judgings, each bootstrap mean gets seeded Gaussian noise with the variance of the
judge's within-row disagreement over the rows (s^2/k per row and side, averaged, over n). That widens the
interval by what k more judgings would still leave uncertain; it is conservative, since the row resampling
already carries part of that noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from workbench.errors import ConfigError

__all__ = ["TESTS", "Decision", "check_test", "decide", "holm", "min_detectable_effect", "tail_level"]

TESTS = ("superiority", "non_inferiority", "equivalence")
RESAMPLES = 2000
_CHUNK = 2500


def check_test(test: str, margin: float | None) -> float:
    """The margin the test uses (validated): superiority defaults to 0; the others need margin > 0."""
    if test not in TESTS:
        raise ConfigError(f"test={test!r} is not a test: use one of {', '.join(TESTS)}")
    if margin is not None and (isinstance(margin, bool) or not isinstance(margin, int | float) or math.isnan(margin)):
        raise ConfigError(f"margin={margin!r} must be a number, e.g. margin=0.02")
    if test == "superiority":
        return float(margin or 0.0)
    if margin is None or margin <= 0:
        raise ConfigError(f"test={test!r} needs margin > 0 (the difference you call negligible), got margin="
                          f"{margin!r}; e.g. margin=0.02")
    return float(margin)


def tail_level(one_sided: float, n: int) -> float:
    """The bootstrap quantile for a one-sided tail `one_sided` (expanded percentile; plain below 2 rows)."""
    if n < 2:
        return one_sided
    from scipy.stats import norm, t

    return float(norm.cdf((n / (n - 1)) ** 0.5 * t.ppf(one_sided, n - 1)))


@dataclass
class Decision:
    """Arrays, one entry per row of the input matrix."""

    n: int
    mean: Any
    low: Any
    high: Any
    p: Any  # p-value of the asked test (small: the claim holds)
    p_worse: Any  # p-value of "the candidate is worse" (a regression)
    p_better: Any  # p-value of "the candidate is better"


def _weights(n: int, resamples: int, seed: int) -> Any:
    """Bootstrap resamples as counts per row (resamples x n): the same draws as indexing, as one matrix product."""
    import numpy as np

    rng = np.random.default_rng(seed)
    index = rng.integers(0, n, size=(resamples, n))
    flat = (np.arange(resamples)[:, None] * n + index).ravel()
    return np.bincount(flat, minlength=resamples * n).reshape(resamples, n).astype(float)


def _p_above(means: Any, bound: float, n: int, *, inclusive: bool = False) -> Any:
    """p of "the mean difference exceeds `bound`": the tail level at which the lower end passes `bound`.
    inclusive: reaching the bound is enough (the superiority gate's "lower end at least min_delta", so identical
    answers pass it, as they always did); otherwise resamples sitting on the bound count against the claim."""
    import numpy as np
    from scipy.stats import norm, t

    below = (means < bound).mean(axis=1) if inclusive else (means <= bound).mean(axis=1)
    if n < 2:
        return below
    with np.errstate(divide="ignore"):
        return t.cdf(norm.ppf(below) / (n / (n - 1)) ** 0.5, n - 1)


def decide(deltas: Any, *, test: str = "superiority", margin: float = 0.0, confidence: float = 0.95,
           noise_var: float = 0.0, resamples: int = RESAMPLES, seed: int = 0) -> Decision:
    """The paired test on each row of `deltas` (comparisons x rows, no NaN)."""
    import numpy as np

    data = np.atleast_2d(np.asarray(deltas, dtype=float))
    reps, n = data.shape
    if n == 0:
        nan = np.full(reps, np.nan)
        return Decision(0, nan, nan, nan, np.ones(reps), np.ones(reps), np.ones(reps))
    weights = _weights(n, resamples, seed).T / n
    noise = np.random.default_rng(seed + 1).standard_normal(resamples) * noise_var ** 0.5 if noise_var > 0 else 0.0
    level = tail_level((1 - confidence) / 2, n)
    parts = []
    for start in range(0, reps, _CHUNK):  # a simulation's thousands of rows, a chunk at a time (memory)
        means = np.round(data[start:start + _CHUNK] @ weights + noise, 12)  # equal values must not drift
        if test == "superiority":
            p = _p_above(means, margin, n, inclusive=True)
        elif test == "non_inferiority":
            p = _p_above(means, -margin, n)
        else:  # two one-sided tests: above -margin and below +margin
            p = np.maximum(_p_above(means, -margin, n), _p_above(-means, -margin, n))
        parts.append((np.quantile(means, level, axis=1), np.quantile(means, 1 - level, axis=1), p,
                      _p_above(-means, 0.0, n), _p_above(means, 0.0, n)))
    low, high, p, p_worse, p_better = (np.concatenate(column) for column in zip(*parts, strict=True))
    return Decision(n, data.mean(axis=1), low, high, p, p_worse, p_better)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values: compare each with alpha and the family-wise error stays <= alpha."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def min_detectable_effect(sd_delta: float, n: int, *, confidence: float = 0.95, power: float = 0.8) -> float:
    """The smallest true mean difference a paired test on `n` rows finds with probability `power`."""
    if n < 2 or math.isnan(sd_delta):
        return float("nan")
    from scipy.stats import t

    one_sided = (1 - confidence) / 2
    return float((t.ppf(1 - one_sided, n - 1) + t.ppf(power, n - 1)) * sd_delta / n ** 0.5)
