"""`%eval DATA -m MODEL [-m MODEL2] [--judge MODEL] [--scorer NAME ...] [--prompt TEXT] [-c N] [--name NAME]
[--experiment EXP] [--no-cache] [--baseline RUN_ID] [--gate [--metric NAME] [--min-delta X] [--threshold X]]
[--no-plot] [-o VAR]`: one `workbench.evaluate(...)` call from a cell; shows the summary and the plot, keeps the
result in `_eval`. The arguments are those of `workbench eval` (one definition, workbench.evals.cli).

DATA is a golden dataset's name or a CSV/JSONL path. Ctrl-C stops it and keeps the rows scored so far.
"""

from __future__ import annotations

from typing import Any

from IPython import display as ipython_display
from IPython.core.magic import Magics, line_magic, magics_class, no_var_expand

from workbench.notebook.guard import one_line_errors
from workbench.notebook.parsing import MagicParser, split_words

__all__ = ["EvalMagics", "register"]

_DOC = __doc__


def _parser() -> MagicParser:
    from workbench.evals.cli import add_eval_arguments  # when the magic runs: %load_ext stays light

    parser = MagicParser("%eval", "e.g. %eval support-qa -m fake/echo --scorer exact_match")
    add_eval_arguments(parser, data_flag=False)
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
        from workbench.evals.cli import evaluation, verdict

        args = _parser().parse_args(split_words(line, "%eval"))
        result = evaluation(args)
        self.shell.user_ns["_eval"] = result
        if args.out:
            self.shell.user_ns[args.out] = result
        ipython_display.display(result)
        if not args.no_plot and len(result.table):
            ipython_display.display(result.plot())
        if args.gate:
            print(verdict(result, args))


def register(ipython: Any) -> None:
    ipython.register_magics(EvalMagics(ipython))
