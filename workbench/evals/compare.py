"""compare() and gate(): evaluations side by side, and the gate (defined in evals/gates, exported here too).

Rows are paired by their row key (the input's content), so an evaluation of the same golden set from a file,
a DataFrame or the store pairs up; a row only one side scored is left out of the paired numbers.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.errors import ConfigError
from workbench.evals.gates import GateResult, gate
from workbench.evals.result import EvalResult
from workbench.evals.stats import paired_bootstrap
from workbench.verbatim import NO_MATH

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["compare", "Comparison", "gate", "GateResult", "as_results"]


def _load(item: EvalResult | str) -> EvalResult:
    if isinstance(item, EvalResult):
        return item
    if isinstance(item, str) and item.strip():
        return EvalResult.from_run(item.strip())
    raise ConfigError(f"{item!r:.80} is neither an EvalResult nor an MLflow run id of an evaluation")


def as_results(items: tuple[EvalResult | str, ...]) -> list[tuple[str, EvalResult]]:
    """(label, one-model result) pairs; a several-model result gives one pair per model."""
    flat: list[tuple[str, EvalResult]] = []
    for item in items:
        result = _load(item)
        for model in result.models:
            flat.append((model, result.for_model(model) if len(result.models) > 1 else result))
    labels = [label for label, _ in flat]
    out: list[tuple[str, EvalResult]] = []
    for label, result in flat:  # the same model twice (two prompts, two runs): tell them apart by run
        if labels.count(label) > 1:
            label = f"{label} ({(result.run_id or result.prompt or 'run')[:8]})"
            while label in [x for x, _ in out]:
                label += "'"
        out.append((label, result))
    return out


@dataclass
class Comparison:
    labels: list[str]  # the first is the reference the others are compared with
    metrics: pd.DataFrame  # per candidate and metric: means, delta, interval, wins/ties/losses
    table: pd.DataFrame  # per row: input, expected, each side's output and scores

    def plot(self) -> Any:
        """Mean of each metric per side with its 95 % interval."""
        import matplotlib.pyplot as plt

        frame = self.metrics
        names = list(dict.fromkeys(frame["metric"]))
        figure, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names), 2.8), squeeze=False)
        for axis, metric in zip(axes[0], names, strict=True):
            part = frame[frame["metric"] == metric]
            means = [part["mean_reference"].iloc[0], *part["mean_candidate"]]
            axis.bar(range(len(means)), means, color=["#9e9e9e"] + ["#1976d2"] * (len(means) - 1))
            axis.set_xticks(range(len(means)), [self.labels[0], *part["candidate"]], rotation=20, fontsize="small")
            axis.set_title(metric)
        figure.tight_layout()
        plt.close(figure)
        return figure

    def _repr_html_(self) -> str:
        frame = self.metrics.copy()
        for column in ("mean_reference", "mean_candidate", "delta", "ci_low", "ci_high"):
            signed = column in ("delta", "ci_low", "ci_high")
            frame[column] = frame[column].map(lambda v, signed=signed: f"{v:+.3f}" if signed and v == v
                                              else f"{v:.3f}" if v == v else "–")
        head = f"Compared with {html.escape(self.labels[0])} on {len(self.table)} rows"
        return f"<div class='{NO_MATH}'><div>{head}</div>{frame.to_html(index=False, escape=True)}</div>"

    def __repr__(self) -> str:
        return f"<Comparison {' vs '.join(self.labels)}: {len(self.table)} rows>\n{self.metrics.to_string(index=False)}"


def compare(*results: EvalResult | str, metrics: list[str] | None = None, confidence: float = 0.95) -> Comparison:
    """Side by side: EvalResults or MLflow run ids (a several-model result counts as one per model). The first
    is the reference; each other is compared with it per row and per metric (wins/ties/losses, a paired interval)."""
    import pandas as pd

    sides = as_results(results)
    if len(sides) < 2:
        raise ConfigError("compare() needs two evaluations (or one with two models), e.g. compare(base, candidate)")
    common = [s for s in sides[0][1].scorers if all(s in r.scorers for _, r in sides[1:])]
    chosen = metrics or common
    missing = [m for m in chosen if m not in common]
    if missing or not chosen:
        raise ConfigError(f"metric(s) {', '.join(missing) or '(none)'} are not in every evaluation; common ones: "
                          f"{', '.join(common) or 'none'}")
    reference_label, reference = sides[0]
    table = reference.table[["row_key", "input", "expected"]].drop_duplicates("row_key").set_index("row_key")
    for label, result in sides:
        part = result.table.drop_duplicates("row_key").set_index("row_key")
        table[f"output: {label}"] = part["output"]
        for metric in chosen:
            table[f"{metric}: {label}"] = part[metric].astype(float)
    rows = []
    for label, _ in sides[1:]:
        for metric in chosen:
            a, b = table[f"{metric}: {reference_label}"], table[f"{metric}: {label}"]
            paired = paired_bootstrap(b.to_numpy(), a.to_numpy(), confidence)
            rows.append({"candidate": label, "metric": metric, "mean_reference": float(a.mean()),
                         "mean_candidate": float(b.mean()), "delta": paired.mean_delta, "ci_low": paired.low,
                         "ci_high": paired.high, "n": paired.n, "wins": paired.wins, "ties": paired.ties,
                         "losses": paired.losses})
    return Comparison([label for label, _ in sides], pd.DataFrame(rows), table.reset_index())
