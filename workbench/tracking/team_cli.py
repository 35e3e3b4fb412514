"""`workbench team apply team.yaml` and `workbench team status [team.yaml]`: the admin's two commands."""

from __future__ import annotations

import argparse
from typing import Any

from workbench.tracking.team_admin import apply, status
from workbench.tracking.team_spec import load_spec

__all__ = ["add_team_parser", "run_team"]


def add_team_parser(sub: Any) -> None:
    parser = sub.add_parser("team", help="the team gateway (MLflow AI Gateway): apply team.yaml, show status")
    actions = parser.add_subparsers(dest="action", required=True)
    apply = actions.add_parser("apply", help="create or update secrets, models, endpoints and budgets from team.yaml")
    apply.add_argument("file", help="the team file (see mlflow/README.md)")
    apply.add_argument("--rotate-keys", action="store_true", help="send every key again even if it looks unchanged")
    status = actions.add_parser("status", help="endpoints, budgets and what each has spent")
    status.add_argument("file", nargs="?", default=None, help="the team file, to check its prices too")


def run_team(args: argparse.Namespace) -> int:
    if args.action == "apply":
        print(apply(load_spec(args.file), rotate_keys=args.rotate_keys))
    else:
        print(status(load_spec(args.file) if args.file else None))
    return 0
