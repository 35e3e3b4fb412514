"""`%trace [trace_id]`, and the `%llm mlflow` / `%llm run start|end` line forms.

`register(ipython)` adds `%trace`. The `%llm` line magic belongs to notebook/magics; it hands its line to
`llm_line(line)` when the first word is one of LLM_LINE_COMMANDS. Each command is one call of the Python
API; a WorkbenchError is shown as one red line (WORKBENCH_DEBUG=1 shows the traceback).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workbench.errors import ConfigError
from workbench.notebook.magics import one_line_errors, split_words

__all__ = ["register", "trace_magic", "llm_line", "LLM_LINE_COMMANDS"]


def _display(obj: Any) -> None:
    from IPython.display import display

    display(obj)


def trace_magic(line: str) -> None:
    """%trace shows the last trace as a tree; %trace <trace_id> shows that one (read from MLflow if needed)."""
    from workbench.tracing import show_trace

    words = line.split()
    if len(words) > 1:
        raise ConfigError(f"%trace takes at most one trace id, got {line.strip()!r}: e.g. %trace tr-6c1f...")
    _display(show_trace(words[0] if words else None))


def _mlflow(args: list[str]) -> Any:
    from workbench.tracking.ui import start_ui

    port = None
    for arg in args:
        key, _, value = arg.partition("=")
        if key.lstrip("-") != "port" or not value.isdigit():
            raise ConfigError(f"%llm mlflow takes port=N, got {arg!r}: e.g. %llm mlflow port=5001")
        port = int(value)
    server = start_ui(port=port)
    print(f"MLflow UI: {server.url}  (store: {server.store})")
    return None


def _run(args: list[str]) -> Any:
    from workbench import tracing

    if not args or args[0] not in ("start", "end"):
        raise ConfigError("use %llm run start [NAME] [experiment=EXP] [param=value ...] or %llm run end")
    if args[0] == "end":
        ended = tracing.end_run()
        print(f"ended run {ended.name!r}" if ended else "no run was open")
        return None
    name, experiment, params = None, None, {}
    for arg in args[1:]:
        key, sep, value = arg.partition("=")
        if not sep:
            if name is not None:
                raise ConfigError(f"%llm run start got a second name {arg!r}: write params as key=value")
            name = arg
        elif key == "experiment":
            experiment = value
        elif key:
            params[key] = value
        else:
            raise ConfigError(f"%llm run start: {arg!r} has no name before '='")
    opened = tracing.start_run(experiment, name, **params)
    print(f"run {opened.name!r} open in experiment {opened.experiment!r} (run_id {opened.run_id}); "
          "calls log under it until %llm run end")
    return None


LLM_LINE_COMMANDS: dict[str, Callable[[list[str]], Any]] = {"mlflow": _mlflow, "run": _run}


def llm_line(line: str) -> Any:
    """Run a `%llm <command> ...` line whose first word is in LLM_LINE_COMMANDS (raises ConfigError otherwise)."""
    words = split_words(line, "%llm")
    if not words or words[0] not in LLM_LINE_COMMANDS:
        raise ConfigError(f"unknown %llm command {words[0] if words else ''!r}: use one of "
                          f"{', '.join(sorted(LLM_LINE_COMMANDS))}")
    return LLM_LINE_COMMANDS[words[0]](words[1:])


def register(ipython: Any) -> None:
    """Add %trace to a shell (called by workbench's load_ipython_extension)."""
    ipython.register_magic_function(one_line_errors(trace_magic), "line", "trace")
