"""`%llm models|config|alias|route|spend|history|budget|chat`: each one call of the Python API.

Commands that show a table return a DataFrame (so `df = %llm spend by project` works); commands that
change something print one confirmation line.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from workbench.errors import ConfigError, WorkbenchError
from workbench.notebook.options import parse_key_value

if TYPE_CHECKING:
    import pandas as pd

    from workbench.notebook.magics import LLMMagics

__all__ = ["run_line", "COMMANDS"]


def _models(magics: LLMMagics, args: list[str]) -> pd.DataFrame:
    import pandas as pd

    from workbench.config import settings
    from workbench.gateway import models

    _no_args("models", args)
    rows = [{"name": settings().default_model, "kind": "default", "target": settings().default_model}]
    rows += [{"name": name, "kind": "alias", "target": target} for name, target in sorted(models.aliases().items())]
    for name, found in sorted(models.routes().items()):
        total = sum(found.weights.values())
        split = ", ".join(f"{model} {weight / total:.0%}" for model, weight in found.weights.items())
        rows.append({"name": name, "kind": "route", "target": split})
    rows += _team_models()
    return pd.DataFrame(rows, columns=["name", "kind", "target"]).set_index("name")


def _team_models() -> list[dict[str, str]]:
    """The team gateway's endpoints, when the tracking store is a team server (its list is the truth)."""
    from workbench.gateway import team

    try:
        where = team.server_url() + team.GATEWAY_PATH
    except ConfigError:  # no team server: nothing to list
        return []
    try:
        names = team.endpoints()
    except WorkbenchError as exc:  # the other models still list; say why the team's do not
        return [{"name": team.PREFIX + "*", "kind": "team", "target": f"unavailable: {exc}"}]
    return [{"name": team.PREFIX + name, "kind": "team", "target": where} for name in names]


def _config(magics: LLMMagics, args: list[str]) -> None:
    import workbench

    if not args:
        current = workbench.settings()
        for name in ("home", "default_model", "judge_model", "tracking_uri", "cache_ttl_s", "max_retries",
                     "retry_backoff_s", "timeout_s"):
            print(f"{name} = {getattr(current, name)}")
        return
    changes = dict(parse_key_value(raw, "%llm config", "default_model=fake/echo") for raw in args)
    workbench.configure(**changes)
    print("set " + ", ".join(f"{key} = {getattr(workbench.settings(), key)}" for key in changes))


def _alias(magics: LLMMagics, args: list[str]) -> pd.DataFrame | None:
    import workbench
    from workbench.gateway import models

    if not args:
        return _models(magics, []).query("kind == 'alias'")
    for raw in args:
        name, model = parse_key_value(raw, "%llm alias", "fast=fake/echo")
        workbench.alias(name, model)
        print(f"alias {name} -> {models.resolve_alias(name)}")
    return None


def _route(magics: LLMMagics, args: list[str]) -> None:
    import workbench

    if len(args) < 2:
        raise ConfigError("%llm route needs a name and MODEL=WEIGHT pairs, e.g. %llm route chat fake/echo=0.9 local/smollm2=0.1")
    weights: dict[str, float] = {}
    for raw in args[1:]:
        model, sep, weight = raw.rpartition("=")  # rpartition: model strings may hold '=' (fake/slow?ms=50)
        try:
            weights[model] = float(weight)
        except ValueError:
            raise ConfigError(f"%llm route: {raw!r} is not MODEL=WEIGHT, e.g. fake/echo=0.9") from None
        if not sep or not model:
            raise ConfigError(f"%llm route: {raw!r} is not MODEL=WEIGHT, e.g. fake/echo=0.9")
    created = workbench.route(args[0], weights)
    print(f"route {created.name}: " + ", ".join(f"{m} {w:g}" for m, w in created.weights.items()))


def _spend(magics: LLMMagics, args: list[str]) -> pd.DataFrame:
    import workbench

    if not args:
        return workbench.spend()
    if args == ["--team"]:
        return workbench.spend(team=True)
    if len(args) == 2 and args[0] == "by":
        return workbench.spend(by=args[1])
    raise ConfigError(f"%llm spend {' '.join(args)!r}: write %llm spend, %llm spend by TAG (e.g. by project) or %llm spend --team")


def _history(magics: LLMMagics, args: list[str]) -> pd.DataFrame:
    if len(args) > 1 or (args and not args[0].isdigit()):
        raise ConfigError(f"%llm history {' '.join(args)!r}: write %llm history, or %llm history N (e.g. 5)")
    return magics.session.frame(int(args[0]) if args else None)


def _usd(raw: str) -> float:
    try:
        return float(raw.removeprefix("$"))
    except ValueError:
        raise ConfigError(f"%llm budget {raw!r} is not an amount in USD: write e.g. %llm budget 5 or %llm budget 0.50") from None


def _budget(magics: LLMMagics, args: list[str]) -> pd.DataFrame | None:
    import pandas as pd

    import workbench
    from workbench.gateway import stores
    from workbench.gateway.prices import format_usd

    if not args:
        ledger = stores.ledger()
        rows = []
        for budget in workbench.budgets():
            spent = ledger.spent_usd(budget.tag, since=budget.since)
            rows.append({"scope": budget.scope, "usd": budget.usd, "spent_usd": spent, "left_usd": budget.usd - spent})
        return pd.DataFrame(rows, columns=["scope", "usd", "spent_usd", "left_usd"]).set_index("scope")
    if len(args) > 2:
        raise ConfigError(f"%llm budget {' '.join(args)!r}: write %llm budget USD [KEY=VALUE] or %llm budget off [KEY=VALUE]")
    tag = parse_key_value(args[1], "%llm budget USD") if len(args) == 2 else None
    scope = "every call" if tag is None else f"calls tagged {tag[0]}={tag[1]}"
    if args[0] in ("off", "none", "remove"):
        workbench.set_budget(None, tag)
        print(f"budget removed for {scope}")
        return None
    budget = workbench.set_budget(_usd(args[0]), tag)
    print(f"budget {format_usd(budget.usd if budget else None)} for {scope}")
    return None


def _chat(magics: LLMMagics, args: list[str]) -> pd.DataFrame | None:
    import pandas as pd

    chats = magics.session.chats
    if not args:
        rows = [{"chat": name, "turns": sum(t["role"] == "user" for t in turns)} for name, turns in chats.items()]
        return pd.DataFrame(rows, columns=["chat", "turns"]).set_index("chat")
    name = args[0]
    if name not in chats:
        raise ConfigError(f"no conversation named {name!r}: start one with %%llm --chat {name}")
    if args[1:] == ["clear"]:
        del chats[name]
        print(f"conversation {name} forgotten")
        return None
    if len(args) > 1:
        raise ConfigError(f"%llm chat {' '.join(args)!r}: write %llm chat NAME or %llm chat NAME clear")
    return pd.DataFrame(chats[name], columns=["role", "content"])


def _no_args(command: str, args: list[str]) -> None:
    if args:
        raise ConfigError(f"%llm {command} takes no arguments (got {' '.join(args)!r})")


COMMANDS: dict[str, Callable[[LLMMagics, list[str]], Any]] = {
    "models": _models,
    "config": _config,
    "alias": _alias,
    "route": _route,
    "spend": _spend,
    "history": _history,
    "budget": _budget,
    "chat": _chat,
}


def _plugged_in(magics: LLMMagics) -> dict[str, Any]:
    """`%llm` commands that optional stages add: a module's LLM_LINE_COMMANDS, run through its llm_line(line)."""
    from workbench.notebook.extension import loaded_modules

    found: dict[str, Any] = {}
    for module in loaded_modules(magics.shell):
        handler = getattr(module, "llm_line", None)
        if callable(handler):
            for word in getattr(module, "LLM_LINE_COMMANDS", {}):
                found.setdefault(word, handler)
    return found


def run_line(magics: LLMMagics, line: str) -> Any:
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise ConfigError(f"%llm {line.strip()!r}: {exc}") from None
    plugged = _plugged_in(magics)
    known = ", ".join([*COMMANDS, *(w for w in plugged if w not in COMMANDS)])
    if not words:
        raise ConfigError(f"%llm needs a command ({known}); to ask a model, use %%llm with the prompt in the cell "
                          "below it (see %%llm?)")
    command = COMMANDS.get(words[0])
    if command is not None:
        return command(magics, words[1:])
    if words[0] in plugged:
        return plugged[words[0]](line)
    raise ConfigError(f"unknown %llm command {words[0]!r}: use one of {known}; to ask a model, use %%llm")
