"""Matplotlib figures for evaluations and comparisons (Agg when no display, so headless runs work)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.evals.result import EvalResult

__all__ = ["plot_result", "plot_deltas", "figure_png"]


def _pyplot() -> Any:
    # matplotlib falls back to Agg by itself where there is no display; a kernel keeps its inline backend
    import matplotlib.pyplot as plt

    return plt


def plot_result(result: EvalResult, ax: Any = None, *, pyplot: bool = True) -> Any:
    """One panel per scorer: the score distribution of each model (histograms overlaid), means marked.
    pyplot=False draws on a bare Figure (no pyplot import, safe off the main thread): for artifacts."""
    scorers = result.scorers or []
    size = (3.6 * max(1, len(scorers)), 2.8)
    if ax is not None:
        axes, figure = [ax] * len(scorers), ax.figure
    elif pyplot:
        figure, grid = _pyplot().subplots(1, max(1, len(scorers)), figsize=size, squeeze=False)
        axes = list(grid[0])
    else:
        from matplotlib.figure import Figure

        figure = Figure(figsize=size)
        axes = list(figure.subplots(1, max(1, len(scorers)), squeeze=False)[0])
    for axis, scorer in zip(axes, scorers, strict=False):
        low, high = result.scales.get(scorer, (0.0, 1.0))
        for model in result.models:
            values = result.table.loc[result.table["model"] == model, scorer].astype(float).dropna()
            if values.empty:
                continue
            bins = 5 if high - low == 4 else 10
            line = axis.hist(values, bins=bins, range=(low, high), alpha=0.5, label=model)
            color = line[2][0].get_facecolor() if line[2] else None
            axis.axvline(values.mean(), color=color, linestyle="--", linewidth=1)
        axis.set_title(scorer)
        axis.set_xlim(low, high)
        axis.set_ylabel("rows")
    if len(result.models) > 1 and axes:
        axes[0].legend(fontsize="small")
    figure.suptitle(f"{result.dataset} ({len(result.table)} rows)", fontsize="medium")
    figure.tight_layout()
    if ax is None and pyplot:
        _pyplot().close(figure)  # returned for display; not left open to be shown twice
    return figure


def plot_deltas(frame: Any, metric: str, labels: tuple[str, str]) -> Any:
    """Per-row differences (b - a) of one metric, sorted: where the candidate wins and loses."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 2.8))
    delta = (frame[f"{metric}_b"] - frame[f"{metric}_a"]).dropna().sort_values().reset_index(drop=True)
    colors = ["#2e7d32" if v > 0 else "#c62828" if v < 0 else "#9e9e9e" for v in delta]
    axis.bar(range(len(delta)), delta, color=colors)
    axis.axhline(0, color="black", linewidth=0.8)
    axis.set_title(f"{metric}: {labels[1]} minus {labels[0]}, per row")
    axis.set_xlabel("rows (sorted)")
    figure.tight_layout()
    plt.close(figure)
    return figure


def figure_png(figure: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()
