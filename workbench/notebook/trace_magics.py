"""`%trace [trace_id]`: a trace as a tree (the last one by default, or one read back from MLflow).

The `%llm mlflow` and `%llm run start|end` line forms live with every other `%llm` command in line_commands.
"""

from __future__ import annotations

from typing import Any

from IPython import display as ipython_display

from workbench.errors import ConfigError
from workbench.notebook.guard import one_line_errors

__all__ = ["register", "trace_magic"]


def _display(obj: Any) -> None:
    ipython_display.display(obj)  # looked up at call time: tests capture displays by patching IPython.display


def trace_magic(line: str) -> None:
    """%trace shows the last trace as a tree; %trace <trace_id> shows that one (read from MLflow if needed)."""
    from workbench.tracing.view import show_trace  # when the magic runs: %load_ext stays light

    words = line.split()
    if len(words) > 1:
        raise ConfigError(f"%trace takes at most one trace id, got {line.strip()!r}: e.g. %trace tr-6c1f...")
    _display(show_trace(words[0] if words else None))


def register(ipython: Any) -> None:
    """Add %trace to a shell (called by workbench's load_ipython_extension)."""
    ipython.register_magic_function(one_line_errors(trace_magic), "line", "trace")
