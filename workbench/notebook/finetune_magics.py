"""`%finetune lora|dpo DATA --name NAME [--base MODEL] [--steps N] [--epochs N] [--lr X] [-r R] [--alpha A]
[--batch-size N] [--max-length N] [--beta X] [--eval GOLDEN] [--scorer NAME ...] [--no-wait] [-o VAR]`:
one `workbench.finetune.lora(...)` / `.dpo(...)` call from a cell, with the same live progress view.

DATA is a variable of the notebook (a DataFrame from workbench.training_data.sft() / .preferences(), a list of dicts)
or a JSONL path. The Adapter (or, with --no-wait, the FineTuneJob) is kept in `_finetune`. Ctrl-C cancels the
fine-tune; its MLflow run ends KILLED.
"""

from __future__ import annotations

from typing import Any

from IPython import display as ipython_display
from IPython.core.magic import Magics, line_magic, magics_class, no_var_expand

from workbench.errors import ConfigError
from workbench.notebook.guard import one_line_errors
from workbench.notebook.parsing import MagicParser, split_words

__all__ = ["FineTuneMagics", "register"]

_DOC = __doc__
_EXAMPLE = "e.g. %finetune lora sft_rows --name support-v1 --steps 30"


def _parser() -> MagicParser:
    parser = MagicParser("%finetune", _EXAMPLE)
    parser.add_argument("method", choices=["lora", "dpo"])
    parser.add_argument("data")
    parser.add_argument("--name", "-n", required=True)
    parser.add_argument("--base", "-b", default="local/smollm2")
    parser.add_argument("--steps", type=int, dest="max_steps")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("-r", "--rank", type=int, dest="r")
    parser.add_argument("--alpha", type=float)
    parser.add_argument("--dropout", type=float)
    parser.add_argument("--target", action="append", dest="target_modules")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--max-length", type=int)
    parser.add_argument("--beta", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--eval", dest="eval_data")
    parser.add_argument("--scorer", "-s", action="append", dest="scorers")
    parser.add_argument("--no-wait", action="store_true")
    parser.add_argument("--out", "-o")
    return parser


@magics_class
class FineTuneMagics(Magics):
    @line_magic("finetune")
    @no_var_expand
    @one_line_errors
    def finetune_magic(self, line: str) -> None:
        self._run(line)

    finetune_magic.__doc__ = _DOC

    def _data(self, name: str) -> Any:
        if name in self.shell.user_ns:
            return self.shell.user_ns[name]
        if name.endswith((".jsonl", ".json", ".ndjson")):
            return name
        raise ConfigError(f"%finetune: DATA {name!r} is neither a variable of this notebook nor a JSONL path; "
                          f"{_EXAMPLE}")

    def _run(self, line: str) -> None:
        from workbench.finetune.api import dpo, lora  # when the magic runs: %load_ext stays light

        words = split_words(line, "%finetune")
        args = vars(_parser().parse_args(words))
        method, data, out, no_wait = args.pop("method"), self._data(args.pop("data")), args.pop("out"), \
            args.pop("no_wait")
        if method == "lora" and args.get("beta") is not None:
            raise ConfigError("%finetune: --beta is a DPO option; use %finetune dpo ... --beta 0.1")
        if args.get("scorers"):
            args["scorers"] = [s for raw in args["scorers"] for s in raw.split(",") if s]
        kwargs = {k: v for k, v in args.items() if v is not None}
        train = lora if method == "lora" else dpo
        result = train(data=data, wait=not no_wait, **kwargs)
        self.shell.user_ns["_finetune"] = result
        if out:
            self.shell.user_ns[out] = result
        ipython_display.display(result)


def register(ipython: Any) -> None:
    ipython.register_magics(FineTuneMagics(ipython))
