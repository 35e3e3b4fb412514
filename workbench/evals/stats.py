"""The statistics behind summaries, gates and calibration: bootstrap intervals, a paired bootstrap on
score differences, Spearman's rho and Cohen's weighted kappa. Seeded, so the same scores give the same numbers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["bootstrap_ci", "paired_bootstrap", "PairedResult", "spearman", "weighted_kappa", "RESAMPLES",
           "mcnemar_exact"]

RESAMPLES = 2000


def _clean(values: Any) -> Any:
    import numpy as np

    array = np.asarray(values, dtype=float)
    return array[~np.isnan(array)]


def bootstrap_ci(values: Any, confidence: float = 0.95, resamples: int = RESAMPLES,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (NaNs left out); (nan, nan) with no values."""
    import numpy as np

    data = _clean(values)
    if data.size == 0:
        return float("nan"), float("nan")
    if data.size == 1 or np.all(data == data[0]):
        return float(data[0]), float(data[0])
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    alpha = (1 - confidence) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


@dataclass(frozen=True)
class PairedResult:
    n: int  # rows both scored
    mean_delta: float  # candidate - baseline
    low: float
    high: float
    wins: int
    ties: int
    losses: int


def paired_bootstrap(candidate: Any, baseline: Any, confidence: float = 0.95, resamples: int = RESAMPLES,
                     seed: int = 0) -> PairedResult:
    """Bootstrap of the mean difference over rows both sides scored (a row missing a score on either side is
    left out): resampling pairs keeps each row's difficulty out of the noise."""
    import numpy as np

    a, b = np.asarray(candidate, dtype=float), np.asarray(baseline, dtype=float)
    keep = ~(np.isnan(a) | np.isnan(b))
    delta = a[keep] - b[keep]
    wins, ties, losses = int((delta > 0).sum()), int((delta == 0).sum()), int((delta < 0).sum())
    if delta.size == 0:
        return PairedResult(0, float("nan"), float("nan"), float("nan"), 0, 0, 0)
    low, high = bootstrap_ci(delta, confidence, resamples, seed)
    return PairedResult(int(delta.size), float(delta.mean()), low, high, wins, ties, losses)


def spearman(a: Any, b: Any) -> float:
    """Spearman's rho on the pairs where both are numbers; nan when either side is constant."""
    import numpy as np
    from scipy.stats import spearmanr

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if x.size < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    return float(spearmanr(x, y).statistic)


def weighted_kappa(a: Any, b: Any, labels: list[int] | None = None, weights: str = "quadratic") -> float:
    """Cohen's kappa with quadratic weights (a 4 against a 5 is a small disagreement, 1 against 5 a big one)."""
    import numpy as np
    from sklearn.metrics import cohen_kappa_score

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = np.rint(x[keep]).astype(int), np.rint(y[keep]).astype(int)
    if x.size < 2:
        return float("nan")
    if len(set(x.tolist()) | set(y.tolist())) < 2:
        return float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        value = cohen_kappa_score(x, y, labels=labels, weights=weights)
    return float(value)


def mcnemar_exact(worse: Any, better: Any, alternative: str = "two-sided") -> Any:
    """Exact McNemar test on discordant pairs (binomial, p=1/2): `worse` rows went pass -> fail, `better` fail ->
    pass. alternative 'greater': p of "the candidate is better"; 'less': of "worse". Arrays work elementwise."""
    import numpy as np
    from scipy.stats import binom

    down, up = np.asarray(worse, dtype=float), np.asarray(better, dtype=float)
    total = down + up
    p_up = binom.sf(up - 1, total, 0.5)  # P(X >= up)
    p_down = binom.sf(down - 1, total, 0.5)
    if alternative == "greater":
        p = p_up
    elif alternative == "less":
        p = p_down
    else:
        p = np.minimum(1.0, 2 * np.minimum(p_up, p_down))
    return np.where(total == 0, 1.0, p)
