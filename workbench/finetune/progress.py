"""What the live view of a fine-tune shows: step, loss, tokens/s and ETA, with the loss curve drawn by matplotlib.

Shown through the one progress display (workbench.evals.progress.Progress), redrawn at most every UPDATE_S (a PNG
costs ~0.1 s). In a notebook the bundle holds a PNG of the loss curve and a text/plain line (what a headless run
or an export shows); in a terminal or a pipe, the line alone.
"""

from __future__ import annotations

import base64
import html
from typing import Any

from workbench.evals.plots import figure_png
from workbench.evals.progress import Bundle
from workbench.verbatim import NO_MATH

__all__ = ["train_view", "train_line", "loss_figure", "UPDATE_S"]

UPDATE_S = 1.0


def loss_figure(steps: list[int], losses: list[float], title: str) -> Any:
    """The loss per step on a bare Figure (no pyplot: no window, no global state)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.2, 2.4))
    axis = figure.subplots()
    axis.plot(steps, losses, color="#1976d2", linewidth=1.2, marker="." if len(steps) < 40 else None)
    axis.set_xlabel("step")
    axis.set_ylabel("loss")
    axis.set_title(title, fontsize="medium")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def train_line(label: str, state: dict[str, Any]) -> str:
    step, total = state.get("step", 0), state.get("total") or "?"
    parts = [f"{label}: step {step}/{total}"]
    if state.get("loss") is not None:
        parts.append(f"loss {state['loss']:.3f}")
    if state.get("tokens_per_s"):
        parts.append(f"{state['tokens_per_s']:.0f} tokens/s")
    if state.get("eta_s") is not None and state.get("phase") == "training":
        parts.append(f"ETA {state['eta_s']:.0f} s")
    parts.append(f"{state.get('elapsed_s', 0.0):.0f} s")
    return " · ".join(parts) + (f" · {state['phase']}" if state.get("phase") not in (None, "training") else "")


def train_view(label: str) -> Any:
    """The render function of a fine-tune's Progress: (state, steps, losses) -> its MIME bundle."""

    def render(state: dict[str, Any], steps: list[int], losses: list[float]) -> Bundle:
        text = train_line(label, state)
        bundle = {"text/plain": text}
        body = f"<div>{html.escape(text)}</div>"
        if len(steps) >= 2:  # matplotlib is a declared dependency: a failing plot is a bug to see, not to hide
            png = base64.b64encode(figure_png(loss_figure(steps, losses, label))).decode()
            bundle["image/png"] = png
            body += f'<img src="data:image/png;base64,{png}" alt="loss curve"/>'
        bundle["text/html"] = f'<div class="wb-finetune {NO_MATH}">{body}</div>'
        return bundle

    return render
