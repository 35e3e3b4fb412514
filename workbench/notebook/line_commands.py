"""`%llm <command> ...`: one static table of sub-commands, each one call of the Python API.

Commands that show a table return a DataFrame (so `df = %llm spend by project` works); commands that
change something print one confirmation line. `%%llm?` lists every row of COMMANDS (its usage and summary),
so a command cannot exist undocumented. Each command imports the floor it calls when it runs: `%load_ext` loads
the notebook floor alone (bench/bench_load_ext.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.errors import ConfigError, WorkbenchError
from workbench.gateway.prices import format_usd
from workbench.notebook.history import Session, history_table
from workbench.notebook.options import parse_key_value
from workbench.notebook.parsing import split_words

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LineCommand", "COMMANDS", "llm_line", "commands_help"]


def _models(session: Session | None, args: list[str]) -> pd.DataFrame:
    import pandas as pd

    from workbench import config
    from workbench.gateway import models
    from workbench.traffic import live

    _no_args("models", args)
    default = config.settings().default_model
    rows = [{"name": default, "kind": "default", "target": default}]
    rows += [{"name": name, "kind": "alias", "target": target} for name, target in sorted(models.aliases().items())]
    rollouts = live.rollouts()
    for name, found in sorted(models.routes().items()):
        total = sum(found.weights.values())
        split = ", ".join(f"{model} {weight / total:.0%}" for model, weight in found.weights.items())
        rollout = rollouts.get(name)
        if rollout is not None:  # a rollout is a route that also has a baseline, a candidate and a state
            split = f"baseline {rollout.baseline}, candidate {rollout.candidate} {rollout.percent:g}% ({rollout.state})"
        rows.append({"name": name, "kind": "rollout" if rollout else "route", "target": split})
    rows += _endpoint_rows()
    rows += _team_rows()
    rows += _family_rows()
    return pd.DataFrame(rows, columns=["name", "kind", "target"]).set_index("name")


def _family_rows() -> list[dict[str, str]]:
    """The models that need no key and no setup here: the fake/ test models and the local/ family."""
    from workbench.providers import fake

    rows = [{"name": call, "kind": "fake", "target": what} for call, what in fake.DESCRIPTIONS.values()]
    rows += [
        {"name": "local/smollm2", "kind": "local", "target": "the bundled SmolLM2-135M-Instruct: offline, no key"},
        {"name": "local/<hub id or folder>", "kind": "local",
         "target": "any Hugging Face causal LM, from the model cache or the hub"},
        {"name": "local/<base>+adapter:<name>[@<version>]", "kind": "local",
         "target": "a fine-tuned adapter stacked on its base (latest version when omitted)"},
    ]
    return rows


def _endpoint_rows() -> list[dict[str, str]]:
    """One row per endpoint of the endpoints file: where it points, its key variable (never a key), its price."""
    from workbench.gateway import endpoint_registry

    broken = endpoint_registry.problem()
    if broken:
        print(f"endpoints file not loaded: {broken}")
    rows = []
    for info in endpoint_registry.list_endpoints():
        target = f"{info.model} at {info.where} · key {info.key} · {info.price}"
        if info.fallbacks:
            target += f" · fallbacks {', '.join(info.fallbacks)}"
        kind = "endpoint" if info.label == info.name else "endpoint route"
        rows.append({"name": info.label, "kind": kind, "target": target})
    return rows


def _team_rows() -> list[dict[str, str]]:
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


def _endpoints(session: Session | None, args: list[str]) -> pd.DataFrame | None:
    import pandas as pd

    from workbench.gateway import endpoint_registry

    if args == ["reload"]:
        found = endpoint_registry.reload_endpoints()
        if found is None:
            print("no endpoints file: set WORKBENCH_ENDPOINTS, or write workbench.yaml in the project "
                  "or endpoints.yaml in the home folder")
        else:
            print(f"endpoints reloaded from {found.path}: {', '.join(found.endpoints) or 'none'}")
        return None
    if args:
        raise ConfigError(f"%llm endpoints {' '.join(args)!r}: write %llm endpoints, or %llm endpoints reload")
    rows = _endpoint_rows()
    path = endpoint_registry.describe_path()
    if path is not None:
        print(f"endpoints file: {path}")
    elif not endpoint_registry.problem():
        print("no endpoints file: set WORKBENCH_ENDPOINTS, or write workbench.yaml in the project "
              "or endpoints.yaml in the home folder (LiteLLM's model_list format)")
    return pd.DataFrame(rows, columns=["name", "kind", "target"]).set_index("name")


def _config(session: Session | None, args: list[str]) -> None:
    from workbench import config

    if not args:
        current = config.settings()
        for name in ("home", "default_model", "judge_model", "tracking_uri", "cache_ttl_s", "max_retries",
                     "retry_backoff_s", "timeout_s"):
            print(f"{name} = {getattr(current, name)}")
        return
    from workbench.gateway import models

    changes = dict(parse_key_value(raw, "%llm config", "default_model=fake/echo") for raw in args)
    for key in ("default_model", "judge_model"):  # checked when set, not at the next call
        if key in changes:
            models.validate_model(changes[key])
    config.configure(**changes)
    print("set " + ", ".join(f"{key} = {getattr(config.settings(), key)}" for key in changes))


def _alias(session: Session | None, args: list[str]) -> pd.DataFrame | None:
    from workbench.gateway import models

    if not args:
        return _models(session, []).query("kind == 'alias'")
    for raw in args:
        name, model = parse_key_value(raw, "%llm alias", "fast=fake/echo")
        models.alias(name, model)
        print(f"alias {name} -> {models.resolve_alias(name)}")
    return None


def _route(session: Session | None, args: list[str]) -> None:
    from workbench.gateway import models

    if len(args) < 2:
        raise ConfigError("%llm route needs a name and MODEL=WEIGHT pairs, e.g. "
                          "%llm route chat fake/echo=0.9 local/smollm2=0.1")
    weights: dict[str, float] = {}
    for raw in args[1:]:
        model, sep, weight = raw.rpartition("=")  # rpartition: model strings may hold '=' (fake/slow?ms=50)
        try:
            weights[model] = float(weight)
        except ValueError:
            raise ConfigError(f"%llm route: {raw!r} is not MODEL=WEIGHT, e.g. fake/echo=0.9") from None
        if not sep or not model:
            raise ConfigError(f"%llm route: {raw!r} is not MODEL=WEIGHT, e.g. fake/echo=0.9")
    created = models.route(args[0], weights)
    print(f"route {created.name}: " + ", ".join(f"{m} {w:g}" for m, w in created.weights.items()))


def _spend(session: Session | None, args: list[str]) -> pd.DataFrame:
    from workbench import config
    from workbench.gateway import accounting

    if args == ["--team"]:
        return accounting.spend(team=True)
    if args and not (len(args) == 2 and args[0] == "by"):
        raise ConfigError(f"%llm spend {' '.join(args)!r}: write %llm spend, %llm spend by TAG (e.g. by project) "
                          "or %llm spend --team")
    # the status bar counts this kernel; this counts the home's ledger: say so, or the two seem to disagree
    print(f"spend of every call recorded in {config.settings().home} (all notebooks and processes sharing it; "
          "the status bar counts this kernel only)")
    return accounting.spend(by=args[1]) if args else accounting.spend()


def _session(session: Session | None, command: str) -> Session:
    if session is None:  # only a shell with `%load_ext workbench` has a history and chats
        raise ConfigError(f"%llm {command} needs the notebook session: run %load_ext workbench first")
    return session


def _history(session: Session | None, args: list[str]) -> pd.DataFrame:
    if len(args) > 1 or (args and not args[0].isdigit()):
        raise ConfigError(f"%llm history {' '.join(args)!r}: write %llm history, or %llm history N (e.g. 5)")
    return history_table(_session(session, "history").frame(int(args[0]) if args else None))


def _usd(raw: str) -> float:
    try:
        return float(raw.removeprefix("$"))
    except ValueError:
        raise ConfigError(f"%llm budget {raw!r} is not an amount in USD: write e.g. %llm budget 5 or "
                          "%llm budget 0.50") from None


def _budget(session: Session | None, args: list[str]) -> pd.DataFrame | None:
    import pandas as pd

    from workbench.gateway import accounting, stores

    if not args:
        ledger = stores.ledger()
        rows = []
        for each in accounting.budgets():
            spent = ledger.spent_usd(each.tag, since=each.since)
            rows.append({"scope": each.scope, "usd": each.usd, "spent_usd": spent, "left_usd": each.usd - spent})
        return pd.DataFrame(rows, columns=["scope", "usd", "spent_usd", "left_usd"]).set_index("scope")
    if len(args) > 2:
        raise ConfigError(f"%llm budget {' '.join(args)!r}: write %llm budget USD [KEY=VALUE] or "
                          "%llm budget off [KEY=VALUE]")
    tag = parse_key_value(args[1], "%llm budget USD") if len(args) == 2 else None
    scope = "every call" if tag is None else f"calls tagged {tag[0]}={tag[1]}"
    if args[0] in ("off", "none", "remove"):
        accounting.set_budget(None, tag)
        print(f"budget removed for {scope}")
        return None
    budget = accounting.set_budget(_usd(args[0]), tag)
    print(f"budget {format_usd(budget.usd if budget else None)} for {scope}")
    return None


def _chat(session: Session | None, args: list[str]) -> pd.DataFrame | None:
    import pandas as pd

    chats = _session(session, "chat").chats
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


def _mlflow(session: Session | None, args: list[str]) -> None:
    from workbench.tracking import ui

    port = None
    for arg in args:
        key, _, value = arg.partition("=")
        if key.lstrip("-") != "port" or not value.isdigit():
            raise ConfigError(f"%llm mlflow takes port=N, got {arg!r}: e.g. %llm mlflow port=5001")
        port = int(value)
    server = ui.start_ui(port=port)
    print(f"MLflow UI: {server.url}  (store: {server.store})")


def _run(session: Session | None, args: list[str]) -> None:
    from workbench.tracking import runs

    if not args or args[0] not in ("start", "end"):
        raise ConfigError("use %llm run start [NAME] [experiment=EXP] [param=value ...] or %llm run end")
    if args[0] == "end":
        ended = runs.end_run()
        print(f"ended run {ended.name!r}" if ended else "no run was open")
        return
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
    opened = runs.start_run(experiment, name, **params)
    print(f"run {opened.name!r} open in experiment {opened.experiment!r} (run_id {opened.run_id}); "
          "calls log under it until %llm run end")


def _no_args(command: str, args: list[str]) -> None:
    if args:
        raise ConfigError(f"%llm {command} takes no arguments (got {' '.join(args)!r})")


@dataclass(frozen=True)
class LineCommand:
    run: Callable[[Session | None, list[str]], Any]
    usage: str  # what follows `%llm `
    summary: str


COMMANDS: dict[str, LineCommand] = {
    "models": LineCommand(_models, "models",
                          "everything callable here: default, aliases, routes, rollouts, endpoints, team, "
                          "fake/ and local/"),
    "endpoints": LineCommand(_endpoints, "endpoints [reload]", "the endpoints file's entries, or reread the file"),
    "config": LineCommand(_config, "config [key=value ...]",
                          "show or change settings (default_model, max_retries, ...)"),
    "alias": LineCommand(_alias, "alias [NAME=MODEL]", "list aliases or define one"),
    "route": LineCommand(_route, "route NAME MODEL=W ...", "split calls between models by weight"),
    "spend": LineCommand(_spend, "spend [by TAG | --team]",
                         "calls, tokens and cost by model or by a tag; --team: the team gateway's budgets"),
    "history": LineCommand(_history, "history [N]", "this session's calls (a DataFrame), the last N"),
    "budget": LineCommand(_budget, "budget [USD|off] [KEY=VALUE]",
                          "list budgets, or set/remove one (global, or for a tag)"),
    "chat": LineCommand(_chat, "chat [NAME [clear]]", "list conversations, show one, or forget it"),
    "mlflow": LineCommand(_mlflow, "mlflow [port=N]", "start the MLflow UI on 127.0.0.1 against the current store"),
    "run": LineCommand(_run, "run start [NAME] [experiment=EXP] [k=v ...] | run end",
                       "open an MLflow run that every call logs under, or end it"),
}


def commands_help() -> str:
    """The `Line forms` part of `%%llm?`: every row of COMMANDS."""
    width = max(len(command.usage) for command in COMMANDS.values()) + len("%llm ") + 2
    return "".join(f"    {('%llm ' + c.usage).ljust(width)} {c.summary}\n" for c in COMMANDS.values())


def llm_line(line: str, session: Session | None = None) -> Any:
    """Run one `%llm <command> ...` line; an unknown or missing command is a ConfigError listing them all."""
    words = split_words(line, "%llm")
    known = ", ".join(COMMANDS)
    if not words:
        raise ConfigError(f"%llm needs a command ({known}); to ask a model, use %%llm with the prompt in the cell "
                          "below it (see %%llm?)")
    command = COMMANDS.get(words[0])
    if command is None:
        raise ConfigError(f"unknown %llm command {words[0]!r}: use one of {known}; to ask a model, use %%llm")
    return command.run(session, words[1:])
