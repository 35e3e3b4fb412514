"""Ctrl-C in a `%%llm` cell: one line, "stopped", whatever the model was doing.

The cell must still stop (Run All halts there, nbclient sees an interrupted cell), so the interrupt is raised
again, as a KeyboardInterrupt whose `_render_traceback_` IPython shows instead of the frames: through a local
model's generate that was 250 lines of transformers and torch; through litellm, dozens.
WORKBENCH_DEBUG=1 shows the full traceback again.
"""

from __future__ import annotations

__all__ = ["Stopped"]


class Stopped(KeyboardInterrupt):
    """The KeyboardInterrupt a `%%llm` cell raises after it stopped: IPython shows its one line."""

    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line

    def _render_traceback_(self) -> list[str]:
        return [f"KeyboardInterrupt: {self.line}"]
