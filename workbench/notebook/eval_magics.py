"""`%eval DATA -m MODEL [-m MODEL2] [--judge MODEL] [--scorer NAME ...] [--prompt TEXT] [-c N] [-o VAR]`:
one `workbench.evaluate(...)` call from a cell; shows the summary and the plot, keeps the result in `_eval`.

DATA is a golden dataset's name or a CSV/JSONL path. Ctrl-C stops it and keeps the rows scored so far.
"""

from __future__ import annotations

import argparse
from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class, no_var_expand

from workbench.errors import ConfigError
from workbench.notebook.magics import one_line_errors, split_words

__all__ = ["EvalMagics", "register", "unregister"]

_DOC = __doc__


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        raise ConfigError(f"%eval: {message}; e.g. %eval support-qa -m fake/echo --scorer exact_match")


def _parser() -> _Parser:
    parser = _Parser(prog="%eval", add_help=False)
    parser.add_argument("data")
    parser.add_argument("-m", "--model", action="append", dest="models")
    parser.add_argument("--judge")
    parser.add_argument("--scorer", "-s", action="append", dest="scorers")
    parser.add_argument("--prompt", "-p")
    parser.add_argument("--concurrency", "-c", type=int, default=8)
    parser.add_argument("--name")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--out", "-o")
    parser.add_argument("--no-plot", action="store_true")
    return parser


@magics_class
class EvalMagics(Magics):
    @line_magic("eval")
    @no_var_expand
    @one_line_errors
    def eval_magic(self, line: str) -> None:
        self._run(line)

    eval_magic.__doc__ = _DOC

    def _run(self, line: str) -> None:
        from IPython.display import display

        import workbench

        words = split_words(line, "%eval")
        args = _parser().parse_args(words)
        scorers: list[Any] | None = None
        if args.scorers:
            scorers = [s for raw in args.scorers for s in raw.split(",") if s]
        result = workbench.evaluate(args.data, models=args.models, prompt=args.prompt, scorers=scorers,
                                    judge=args.judge, concurrency=args.concurrency, name=args.name,
                                    cache=not args.no_cache)
        self.shell.user_ns["_eval"] = result
        if args.out:
            self.shell.user_ns[args.out] = result
        display(result)
        if not args.no_plot and len(result.table):
            display(result.plot())


def register(ipython: Any) -> None:
    ipython.register_magics(EvalMagics(ipython))


def unregister(ipython: Any) -> None:
    ipython.magics_manager.magics["line"].pop("eval", None)
    ipython.magics_manager.registry.pop("EvalMagics", None)
