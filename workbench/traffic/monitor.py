"""`workbench.rollout_report(name)`: the seed's "monitor" step, per variant of a rollout.

Calls come from the cost ledger (every call of a rollout carries `rollout=<name>` and `variant=...` tags); thumbs and
stars come from the signals journal, joined by trace id (the latest signal of a kind on a trace counts once). Works
in any process that shares the home folder, with or without the Rollout object.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.evals.plots import figure_png
from workbench.gateway.accounting import calls as ledger_calls
from workbench.signals.journal import journal
from workbench.traffic.live import get_rollout
from workbench.verbatim import NO_MATH

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RolloutReport", "rollout_report", "COLUMNS"]

COLUMNS = ["model", "calls", "errors", "error_rate", "latency_p50_ms", "latency_p95_ms", "cost_usd", "thumbs",
           "thumbs_up_share", "stars", "mean_stars"]


@dataclass
class RolloutReport:
    name: str
    table: pd.DataFrame  # one row per variant (baseline first), COLUMNS
    state: str | None = None  # the in-process rollout's state, when known
    percent: float | None = None

    def plot(self) -> Any:
        """Four panels per variant: calls, error rate, latency p50/p95, thumbs-up share and mean stars."""
        from matplotlib.figure import Figure

        frame = self.table
        variants = list(frame.index)
        colors = ["#9e9e9e" if v == "baseline" else "#1976d2" for v in variants]
        figure = Figure(figsize=(11, 2.6))
        axes = figure.subplots(1, 4)
        axes[0].bar(variants, frame["calls"], color=colors)
        axes[0].set_title("calls")
        axes[1].bar(variants, frame["error_rate"].fillna(0), color=colors)
        axes[1].set_title("error rate")
        axes[1].set_ylim(0, max(0.05, float(frame["error_rate"].fillna(0).max()) * 1.2))
        positions = range(len(variants))
        axes[2].bar([p - 0.2 for p in positions], frame["latency_p50_ms"].fillna(0), 0.4, label="p50", color=colors)
        axes[2].bar([p + 0.2 for p in positions], frame["latency_p95_ms"].fillna(0), 0.4, label="p95", color=colors,
                    alpha=0.5)
        axes[2].set_xticks(list(positions), variants)
        axes[2].set_title("latency ms (p50, p95)")
        axes[3].bar([p - 0.2 for p in positions], frame["thumbs_up_share"].fillna(0), 0.4, color=colors)
        axes[3].bar([p + 0.2 for p in positions], frame["mean_stars"].fillna(0) / 5, 0.4, color=colors, alpha=0.5)
        axes[3].set_xticks(list(positions), variants)
        axes[3].set_ylim(0, 1)
        axes[3].set_title("thumbs-up share | stars/5")
        figure.suptitle(f"rollout {self.name}", fontsize="medium")
        figure.tight_layout()
        return figure

    def _summary(self) -> str:
        head = f"rollout {self.name}"
        if self.state is not None:
            head += f" ({self.state}, {self.percent:g}% to candidate)"
        return head

    def __repr__(self) -> str:
        if self.table.empty:
            return f"<RolloutReport {self._summary()}: no calls yet>"
        return f"<RolloutReport {self._summary()}>\n{self.table.to_string(float_format=lambda v: f'{v:.3g}')}"

    def _repr_html_(self) -> str:
        if self.table.empty:
            return (f"<div class='{NO_MATH}'>{html.escape(self._summary())}: "
                    f"no calls tagged rollout={html.escape(self.name)} yet</div>")
        body = self.table.to_html(escape=True, float_format=lambda v: f"{v:.3g}", na_rep="–")
        png = base64.b64encode(figure_png(self.plot())).decode()  # matplotlib is declared: a failure is a bug
        body += f'<img src="data:image/png;base64,{png}" alt="rollout {html.escape(self.name)}"/>'
        return f"<div class='{NO_MATH}'><div>{html.escape(self._summary())}</div>{body}</div>"


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _signals(trace_ids: set[str]) -> dict[str, dict[str, Any]]:
    """trace id -> {'thumbs': bool, 'stars': int}: the latest of each kind."""
    found: dict[str, dict[str, Any]] = {}
    for row in journal().rows():
        if row.trace_id in trace_ids and row.kind in ("thumbs", "stars"):
            found.setdefault(row.trace_id, {})[row.kind] = row.value
    return found


def rollout_report(name: str, since: float | None = None) -> RolloutReport:
    """Per variant of rollout `name`: calls, error rate, latency p50/p95, cost, thumbs-up share, mean stars."""
    import pandas as pd

    frame = ledger_calls()
    mine = frame[frame["tags"].map(lambda t: isinstance(t, dict) and t.get("rollout") == name)]
    if since is not None and not mine.empty:
        mine = mine[mine["created_at"] >= pd.to_datetime(since, unit="s")]
    signals = _signals({t for t in mine["trace_id"].dropna()}) if not mine.empty else {}
    rows = {}
    for variant in ("baseline", "candidate"):
        part = mine[mine["tags"].map(lambda t, v=variant: t.get("variant") == v)]
        if part.empty:
            continue
        failed = part["status"].isin(["error", "interrupted"])
        latency = [float(v) for v in part.loc[part["status"] == "ok", "latency_ms"].dropna()]
        marks = [signals.get(t, {}) for t in part["trace_id"].dropna()]
        thumbs = [m["thumbs"] for m in marks if "thumbs" in m]
        stars = [m["stars"] for m in marks if "stars" in m]
        used = part["model_used"].dropna()
        rows[variant] = {
            "model": used.mode().iloc[0] if not used.empty else part["model"].iloc[0],
            "calls": len(part), "errors": int(failed.sum()), "error_rate": float(failed.mean()),
            "latency_p50_ms": _percentile(latency, 0.5), "latency_p95_ms": _percentile(latency, 0.95),
            "cost_usd": float(part["cost_usd"].fillna(0).sum()), "thumbs": len(thumbs),
            "thumbs_up_share": sum(1 for t in thumbs if t) / len(thumbs) if thumbs else math.nan,
            "stars": len(stars), "mean_stars": sum(stars) / len(stars) if stars else math.nan,
        }
    table = pd.DataFrame.from_dict(rows, orient="index", columns=COLUMNS)
    table.index.name = "variant"
    live = get_rollout(name)
    return RolloutReport(name, table, live.state if live else None, live.percent if live else None)
