"""`workbench demo|doctor|cache|eval|team|mlflow` — the command line. Each command is one call of the Python API."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

from workbench.demo import run_demo
from workbench.doctor import report
from workbench.errors import WorkbenchError
from workbench.evals.cli import add_eval_arguments, run_eval
from workbench.gateway import accounting, stores
from workbench.secrets import redact
from workbench.tracking.team_cli import add_team_parser, run_team
from workbench.tracking.ui import start_ui

__all__ = ["main", "build_parser"]

_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def register(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        _COMMANDS[name] = fn
        return fn

    return register


@command("cache")
def _cache(args: argparse.Namespace) -> int:
    if args.action == "clear":
        removed = accounting.clear_cache()
        print(f"removed {removed} cached answer(s) from {stores.cache().path}")
    else:
        print(f"{accounting.cache_size()} cached answer(s) in {stores.cache().path}")
    return 0


@command("demo")
def _demo(args: argparse.Namespace) -> int:
    return run_demo()


@command("doctor")
def _doctor(args: argparse.Namespace) -> int:
    print(report())
    return 0


@command("mlflow")
def _mlflow(args: argparse.Namespace) -> int:
    server = start_ui(port=args.port, wait_s=120.0)
    print(f"MLflow UI: {server.url}  (store: {server.store})", flush=True)
    if server.process is None:  # the store is already a server: nothing to keep running
        return 0
    try:
        while server.process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


@command("eval")
def _eval(args: argparse.Namespace) -> int:
    return run_eval(args)


@command("team")
def _team(args: argparse.Namespace) -> int:
    return run_team(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="Jupyter-native LLMOps workbench")
    sub = parser.add_subparsers(dest="command", required=True)
    cache = sub.add_parser("cache", help="show or clear the answer cache")
    cache.add_argument("action", choices=["clear", "info"], nargs="?", default="info")
    sub.add_parser("demo", help="run the quickstart demo offline")
    sub.add_parser("doctor", help="report what is installed and where things are")
    evaluation = sub.add_parser("eval", help="evaluate a model on a golden dataset; --gate fails CI on a regression")
    add_eval_arguments(evaluation, data_flag=True)
    add_team_parser(sub)
    ui = sub.add_parser("mlflow", help="start the MLflow UI on 127.0.0.1 against the current store")
    ui.add_argument("--port", type=int, default=None, help="port to listen on (default 5000, or a free one)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except WorkbenchError as exc:
        print(f"workbench {args.command}: {redact(str(exc))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
