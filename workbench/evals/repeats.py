"""judge_repeats=k: each judged row judged k times (seeds 0..k-1, sampled), scored by the mean.

Each repeat is its own call with its own seed, so its own cache entry: a rerun of the evaluation is free and
gives the same numbers. Besides the mean, a row keeps the spread of its judgings (`<scorer>_sd`), how many
could be read (`<scorer>_k`) and the values themselves (`<scorer>_repeats`); the summary turns these into the
judge's self-agreement, and the gate into a wider interval.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from typing import Any

from workbench.evals.scoring import Score, ScoreInput, Scorer

__all__ = ["JUDGE_MODES", "check_repeats", "noise_table", "score_repeated"]

JUDGE_MODES = ("parse", "logprobs")


def check_repeats(judge_repeats: Any, judge_mode: Any) -> None:
    from workbench.errors import ConfigError

    if isinstance(judge_repeats, bool) or not isinstance(judge_repeats, int) or not 1 <= judge_repeats <= 50:
        raise ConfigError(f"judge_repeats={judge_repeats!r} must be a whole number from 1 to 50, e.g. judge_repeats=3")
    if judge_mode not in JUDGE_MODES:
        raise ConfigError(f"judge_mode={judge_mode!r} must be one of {', '.join(JUDGE_MODES)}")


def score_repeated(scorer: Scorer, item: ScoreInput, k: int) -> tuple[Score, dict[str, Any]]:
    """The row's Score (mean of the readable judgings) and its extra columns."""
    if scorer.kind == "deterministic" or k == 1:
        return scorer.score(item), {}
    scores = [scorer.score(dataclasses.replace(item, repeat=i, sampled=True)) for i in range(k)]
    values = [s.value for s in scores if s.value == s.value]
    cost = sum(s.cost_usd for s in scores)
    first = next((s for s in scores if s.value == s.value), scores[0])
    unread = next((s.raw for s in scores if s.failed), None)
    extras = {f"{scorer.name}_repeats": json.dumps([None if s.value != s.value else s.value for s in scores]),
              f"{scorer.name}_sd": statistics.stdev(values) if len(values) > 1 else float("nan"),
              f"{scorer.name}_k": float(len(values))}
    if not values:
        return Score(float("nan"), raw=unread, failed=True, cost_usd=cost, trace_id=first.trace_id), extras
    mean = sum(values) / len(values)
    rationale = f"mean of {len(values)} of {k} judgings {[round(v, 2) for v in values]}; first: {first.rationale or ''}"
    return Score(mean, rationale=rationale[:1000], raw=unread, cost_usd=cost, trace_id=first.trace_id), extras


def noise_table(table: Any, models: list[str], scorers: list[str]) -> Any:
    """Per model and judged scorer: repeats, rows, self-agreement (share of rows whose readable judgings all
    agree), the mean within-row sd, and the sd its noise leaves on the mean (sqrt(mean(sd^2 / k)) / sqrt(n))."""
    import pandas as pd

    rows = []
    for model in models:
        part = table[table["model"] == model]
        for scorer in scorers:
            if f"{scorer}_sd" not in part:
                continue
            values = part[f"{scorer}_repeats"].dropna().map(json.loads)
            readable = [[v for v in vs if v is not None] for vs in values]
            judged = [vs for vs in readable if len(vs) > 1]
            sd = part[f"{scorer}_sd"].astype(float)
            k = part[f"{scorer}_k"].astype(float).clip(lower=1)
            per_row = (sd ** 2 / k).dropna()
            rows.append({"model": model, "scorer": scorer, "repeats": int(max((len(v) for v in values), default=0)),
                         "rows": len(judged),
                         "agreement": sum(len(set(v)) == 1 for v in judged) / len(judged) if judged else float("nan"),
                         "within_row_sd": float(sd.mean()) if sd.notna().any() else float("nan"),
                         "noise_on_mean": float((per_row.mean() / max(1, len(per_row))) ** 0.5) if len(per_row)
                         else float("nan")})
    return pd.DataFrame(rows, columns=["model", "scorer", "repeats", "rows", "agreement", "within_row_sd",
                                       "noise_on_mean"])
