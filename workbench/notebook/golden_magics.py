"""`%golden add|show|edit|list|save NAME`: golden datasets from notebook cells. Each is one Python API call.

    %golden add NAME [--out N | --response VAR] [--model M] [--expected TEXT] [--verified] [--tags a,b]
        adds the last %%llm call (its prompt as input, its answer as expected, unverified); --out N takes
        cell N's call (or Out[N]), --response VAR a Response held in VAR
    %golden show NAME      the rows as a table        %golden edit NAME   review rows one by one (widget)
    %golden list           the datasets               %golden save NAME   record a version (digest + MLflow)
"""

from __future__ import annotations

import argparse
from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class, no_var_expand

from workbench.errors import ConfigError, WorkbenchError
from workbench.notebook.guard import one_line_errors
from workbench.notebook.history import Session
from workbench.notebook.parsing import MagicParser, split_words

__all__ = ["GoldenMagics", "register", "row_from_call", "last_call"]

_DOC = __doc__


def _parser() -> MagicParser:
    parser = MagicParser("%golden", "see %golden?")
    parser.add_argument("action", choices=["add", "show", "edit", "list", "save"])
    parser.add_argument("name", nargs="?")
    parser.add_argument("--out", type=int)
    parser.add_argument("--response")
    parser.add_argument("--model", "-m")
    parser.add_argument("--expected")
    parser.add_argument("--verified", action="store_true")
    parser.add_argument("--tags")
    parser.add_argument("--notes")
    return parser


def _pick(value: Any, model: str | None, where: str) -> Any:
    """A Response from a Response or a {model: Response} dict (a several-model cell)."""
    if isinstance(value, dict):
        if model is None:
            if len(value) == 1:
                return next(iter(value.values()))
            raise ConfigError(f"{where} holds answers of {', '.join(value)}: pick one with --model")
        if model not in value:
            raise ConfigError(f"{where} has no answer from {model!r}: it has {', '.join(value)}")
        return value[model]
    return value


def last_call(session: Any, out: int | None, model: str | None, namespace: dict[str, Any]) -> tuple[Any, str]:
    """(Response, source) of the call to add: the last %%llm call, cell `out`'s, or Out[out]."""
    entries = [e for e in session.entries if e.response is not None]
    if out is not None:
        entries = [e for e in entries if e.cell.execution_count == out]
        if not entries:
            found = namespace.get("Out", {}).get(out)
            if found is None:
                raise WorkbenchError(f"cell {out} made no %%llm call and Out[{out}] is empty: pass --response VAR")
            return _pick(found, model, f"Out[{out}]"), f"cell {out}"
    if model is not None:
        entries = [e for e in entries if model in (e.model, e.response.model_used)]
    if not entries:
        raise WorkbenchError("no %%llm answer yet in this session" + (f" from {model}" if model else "") +
                             ": run a %%llm cell first, or pass --response VAR")
    last = entries[-1]
    same_cell = [e for e in entries if e.cell is last.cell]
    if len(same_cell) > 1 and model is None:  # a several-model cell: its first answer, unless --model says
        last = same_cell[0]
    return last.response, f"cell {last.cell.execution_count}" if last.cell.execution_count else "cell"


def row_from_call(response: Any) -> Any:
    """The golden input of a call: its prompt, or its messages when there was a system prompt or a chat."""
    messages = list(getattr(response, "messages", None) or [])
    if len(messages) == 1 and messages[0].get("role") == "user" and isinstance(messages[0].get("content"), str):
        return messages[0]["content"]
    if messages:
        return messages
    raise WorkbenchError("this Response does not say what was asked (no messages): add the row with "
                         "workbench.golden(NAME).add(input, expected)")


@magics_class
class GoldenMagics(Magics):
    def __init__(self, shell: Any, session: Session) -> None:
        super().__init__(shell)
        self.session = session  # the %%llm calls of this shell, which `%golden add` picks from

    @line_magic("golden")
    @no_var_expand
    @one_line_errors
    def golden_magic(self, line: str) -> Any:
        return self._run(line)

    golden_magic.__doc__ = _DOC

    def _run(self, line: str) -> Any:
        from workbench.datasets.golden import golden, golden_names  # when the magic runs: %load_ext stays light
        from workbench.notebook.golden_editor import editor

        words = split_words(line, "%golden")
        args = _parser().parse_args(words)
        if args.action == "list":
            return golden_names()
        if not args.name:
            raise ConfigError(f"%golden {args.action} needs a dataset name, e.g. %golden {args.action} support-qa")
        if args.action in ("show", "edit", "save") and args.name not in golden_names():
            known = ", ".join(golden_names()) or "none yet"  # a typo must not create an empty dataset
            raise WorkbenchError(f"no golden dataset {args.name!r} (known: {known}): add rows first with "
                                 f"%golden add {args.name} after a %%llm cell")
        if args.action == "show":
            return golden(args.name)
        if args.action == "edit":
            return editor(golden(args.name))
        if args.action == "save":
            version = golden(args.name).save()
            print(f"saved {args.name} v{version.version}: {version.rows} rows, digest {version.short_digest}"
                  + (f", MLflow dataset {version.mlflow_dataset_id}" if version.mlflow_dataset_id else ""))
            return None
        return self._add(args)

    def _add(self, args: argparse.Namespace) -> None:
        from workbench.datasets.golden import golden

        namespace = self.shell.user_ns
        if args.response:
            if args.response not in namespace:
                raise WorkbenchError(f"--response {args.response}: no variable {args.response!r} in the notebook")
            response, source = _pick(namespace[args.response], args.model, args.response), args.response
        else:
            response, source = last_call(self.session, args.out, args.model, namespace)
        if not hasattr(response, "text"):
            raise WorkbenchError(f"{source} is a {type(response).__name__}, not a Response: pass --response VAR")
        expected = args.expected if args.expected is not None else response.text
        dataset = golden(args.name)
        row = dataset.add(row_from_call(response), expected, verified=args.verified, tags=args.tags,
                          source=getattr(response, "trace_id", None) or source, notes=args.notes)
        shown = " ".join(str(expected).split())
        state = "verified" if row.verified else "unverified: check it with %golden edit " + args.name
        print(f"added to {args.name} ({len(dataset)} rows): expected {shown[:60]!r}{'...' if len(shown) > 60 else ''}"
              f" ({state})")


def register(ipython: Any, session: Session) -> None:
    ipython.register_magics(GoldenMagics(ipython, session))
