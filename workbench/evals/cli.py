"""The evaluation's arguments, defined once for `workbench eval` (the command line, CI) and `%eval` (a cell).

    workbench eval --dataset FILE --model M [--baseline RUN_ID] --gate      exit 0 passed (or no gate), 1 the gate
                                                                           failed, 2 a usage or setup error
    %eval DATA -m M [--baseline RUN_ID --gate]                             the same evaluation from a cell

Both front ends parse with their own parser class (argparse exits a process; a magic shows one red line)
but add the same arguments here, run the same `evaluation(args)` and judge the gate with the same `verdict`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from workbench.errors import ConfigError
from workbench.evals.compare import gate
from workbench.evals.result import EvalResult
from workbench.evals.runner import evaluate

__all__ = ["add_eval_arguments", "evaluation", "verdict", "Verdict", "run_eval"]


def add_eval_arguments(parser: argparse.ArgumentParser, *, data_flag: bool) -> None:
    """Every argument of an evaluation. data_flag: the data is `--dataset X` (the command line) rather than the
    first word (`%eval X`)."""
    where = "a CSV/JSONL file or a stored golden dataset's name"
    if data_flag:
        parser.add_argument("--dataset", required=True, dest="data", help=where)
    else:
        parser.add_argument("data", help=where)
    parser.add_argument("--model", "-m", action="append", dest="models", help="the model (repeat for several)")
    parser.add_argument("--scorer", "-s", action="append", dest="scorers", help="e.g. exact_match, token_f1")
    parser.add_argument("--judge", help="judge model for similarity")
    parser.add_argument("--prompt", "-p", help="template with {input}")
    parser.add_argument("--concurrency", "-c", type=int, default=8)
    parser.add_argument("--name", help="the run's name (default: dataset and models)")
    parser.add_argument("--experiment", help="MLflow experiment for the run")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--baseline", help="MLflow run id of the baseline evaluation")
    parser.add_argument("--gate", action="store_true", help="judge a regression (the command line exits 1 on FAIL)")
    parser.add_argument("--metric", action="append",
                        help="the gated scorer (default: the first); repeat or comma-separate for several (Holm)")
    parser.add_argument("--min-delta", type=float, default=0.0, help="lowest allowed delta vs the baseline")
    parser.add_argument("--test", choices=["superiority", "non_inferiority", "equivalence"], default="superiority",
                        help="what the gate must show (default superiority: no worse than --min-delta)")
    parser.add_argument("--margin", type=float, help="for non_inferiority / equivalence: the negligible difference")
    parser.add_argument("--judge-repeats", type=int, default=1, help="judge each judged row this many times")
    parser.add_argument("--threshold", type=float, help="without --baseline: lowest allowed mean (interval low end)")


def evaluation(args: argparse.Namespace) -> EvalResult:
    """The evaluation the parsed arguments ask for (its gate options checked before any row runs)."""
    if args.gate and args.baseline is None and args.threshold is None:
        raise ConfigError("--gate needs --baseline RUN_ID (a paired comparison) or --threshold X (a floor)")
    if args.gate and len(args.models or []) != 1:
        raise ConfigError("--gate gates one model: pass a single --model")
    scorers = [s for raw in args.scorers or [] for s in raw.split(",") if s] or None
    result: EvalResult = evaluate(args.data, models=args.models, scorers=scorers, judge=args.judge,
                                  prompt=args.prompt, concurrency=args.concurrency, name=args.name,
                                  experiment=args.experiment, cache=not args.no_cache,
                                  judge_repeats=args.judge_repeats)
    return result


@dataclass(frozen=True)
class Verdict:
    passed: bool
    text: str

    def __str__(self) -> str:
        return self.text


def verdict(result: EvalResult, args: argparse.Namespace) -> Verdict:
    """The gate's verdict: paired against --baseline, else the interval's low end against --threshold."""
    metrics = [m for raw in args.metric or [] for m in raw.split(",") if m] or [result.scorers[0]]
    metric = metrics[0]
    if args.baseline:  # one line: PASS/FAIL, the test, margin, interval, rows, p, MDE (and the deciding metric)
        found = gate(result, args.baseline, metric=metrics if len(metrics) > 1 else metric, min_delta=args.min_delta,
                     test=args.test, margin=args.margin)
        return Verdict(found.passed, str(found))
    if len(metrics) > 1:
        raise ConfigError("--threshold gates one --metric; pass --baseline RUN_ID to gate several")
    row = result.summary[result.summary["scorer"] == metric]
    if row.empty:
        raise ConfigError(f"--metric {metric}: this evaluation has {', '.join(result.scorers)}")
    low = float(row["ci_low"].iloc[0])
    passed = low == low and low >= args.threshold
    return Verdict(passed, f"{'PASS' if passed else 'FAIL'}: {metric} mean {float(row['mean'].iloc[0]):.3f}, 95% "
                           f"interval low end {low:.3f} {'>=' if passed else '<'} threshold {args.threshold:.3f}")


def run_eval(args: argparse.Namespace) -> int:
    """`workbench eval`: the summary and run id on stdout; the exit code of the gate."""
    if not args.models:
        raise ConfigError("--model is required: e.g. workbench eval --dataset qa.jsonl --model fake/echo")
    result = evaluation(args)
    print(result.summary.to_string(index=False))
    print(f"run_id {result.run_id}")
    if not args.gate:
        return 0
    found = verdict(result, args)
    print(found)
    return 0 if found.passed else 1
