"""The live view of a fine-tune: step, loss, tokens/s and ETA, with the loss curve drawn by matplotlib.

Updated from the waiting (caller's) thread only. In a notebook: one display handle holding a PNG of the loss curve and
a text/plain line (what a headless run or an export shows), redrawn at most every UPDATE_S (a PNG costs ~0.1 s); its
last state is what the saved notebook keeps. In a terminal: one `\\r` line on stderr; in a pipe: the final line.
"""

from __future__ import annotations

import base64
import html
import sys
import time
from typing import Any

from workbench.evals.progress import in_notebook
from workbench.verbatim import NO_MATH

__all__ = ["TrainProgress", "loss_figure"]

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


class TrainProgress:
    def __init__(self, label: str, enabled: bool = True) -> None:
        self.label = label
        self._last = 0.0
        self._handle: Any = None
        self._mode = "off" if not enabled else "notebook" if in_notebook() else \
            "tty" if getattr(sys.stderr, "isatty", lambda: False)() else "quiet"

    @staticmethod
    def line(label: str, state: dict[str, Any]) -> str:
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

    def update(self, state: dict[str, Any], steps: list[int], losses: list[float], *, force: bool = False) -> None:
        now = time.perf_counter()
        if self._mode == "off" or (not force and now - self._last < UPDATE_S):
            return
        self._last = now
        text = self.line(self.label, state)
        if self._mode == "notebook":
            bundle = {"text/plain": text}
            body = f"<div>{html.escape(text)}</div>"
            if len(steps) >= 2:
                try:
                    from workbench.evals.plots import figure_png

                    png = base64.b64encode(figure_png(loss_figure(steps, losses, self.label))).decode()
                    bundle["image/png"] = png
                    body += f'<img src="data:image/png;base64,{png}" alt="loss curve"/>'
                except ImportError:  # no matplotlib: the text line is the display
                    pass
            bundle["text/html"] = f'<div class="wb-finetune {NO_MATH}">{body}</div>'
            from IPython.display import display

            if self._handle is None:
                self._handle = display(bundle, raw=True, display_id=True)
            else:
                self._handle.update(bundle, raw=True)
        elif self._mode == "tty":
            sys.stderr.write("\r" + text[:150])
            sys.stderr.flush()

    def close(self, state: dict[str, Any], steps: list[int], losses: list[float]) -> None:
        if self._mode == "off":
            return
        self.update(state, steps, losses, force=True)
        if self._mode == "tty":
            sys.stderr.write("\n")
        elif self._mode == "quiet":
            print(self.line(self.label, state), file=sys.stderr)
