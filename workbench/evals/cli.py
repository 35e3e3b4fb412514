"""`workbench eval --dataset FILE --model M [--baseline RUN_ID] --gate`: an evaluation (and a gate) for CI.

Exit codes: 0 passed (or no gate asked), 1 the gate failed, 2 a usage or setup error.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from workbench.errors import ConfigError

__all__ = ["add_eval_parser", "run_eval"]


def add_eval_parser(sub: Any) -> None:
    parser = sub.add_parser("eval", help="evaluate a model on a golden dataset; --gate fails CI on a regression")
    parser.add_argument("--dataset", required=True, help="a CSV/JSONL file or a stored golden dataset's name")
    parser.add_argument("--model", "-m", action="append", required=True, dest="models")
    parser.add_argument("--scorer", "-s", action="append", dest="scorers", help="e.g. exact_match, token_f1")
    parser.add_argument("--judge", help="judge model for similarity")
    parser.add_argument("--prompt", help="template with {input}")
    parser.add_argument("--concurrency", "-c", type=int, default=8)
    parser.add_argument("--baseline", help="MLflow run id of the baseline evaluation")
    parser.add_argument("--gate", action="store_true", help="exit 1 when the candidate fails the gate")
    parser.add_argument("--metric", action="append", dest="metrics",
                        help="the gated scorer (default: the first); repeat or comma-separate for several (Holm)")
    parser.add_argument("--min-delta", type=float, default=0.0, help="lowest allowed delta vs the baseline")
    parser.add_argument("--test", choices=["superiority", "non_inferiority", "equivalence"], default="superiority",
                        help="what the gate must show (default superiority: no worse than --min-delta)")
    parser.add_argument("--margin", type=float, help="for non_inferiority / equivalence: the negligible difference")
    parser.add_argument("--judge-repeats", type=int, default=1, help="judge each judged row this many times")
    parser.add_argument("--threshold", type=float, help="without --baseline: lowest allowed mean (interval low end)")
    parser.add_argument("--experiment", help="MLflow experiment for the run")
    parser.add_argument("--no-cache", action="store_true")


def run_eval(args: argparse.Namespace) -> int:
    import workbench

    if args.gate and args.baseline is None and args.threshold is None:
        raise ConfigError("--gate needs --baseline RUN_ID (a paired comparison) or --threshold X (a floor)")
    if args.gate and len(args.models) != 1:
        raise ConfigError("--gate gates one model: pass a single --model")
    scorers = [s for raw in args.scorers or [] for s in raw.split(",") if s] or None
    result = workbench.evaluate(args.dataset, models=args.models, scorers=scorers, judge=args.judge,
                                prompt=args.prompt, concurrency=args.concurrency, experiment=args.experiment,
                                cache=not args.no_cache, judge_repeats=args.judge_repeats)
    print(result.summary.to_string(index=False))
    print(f"run_id {result.run_id}")
    if not args.gate:
        return 0
    metrics = [m for raw in args.metrics or [] for m in raw.split(",") if m] or [result.scorers[0]]
    metric = metrics[0]
    if args.baseline:
        verdict = workbench.gate(result, args.baseline, metric=metrics if len(metrics) > 1 else metric,
                                 min_delta=args.min_delta, test=args.test, margin=args.margin)
        print(verdict)  # one line: PASS/FAIL, the test, margin, interval, rows, p, MDE (and the deciding metric)
        return 0 if verdict.passed else 1
    if len(metrics) > 1:
        raise ConfigError("--threshold gates one --metric; pass --baseline RUN_ID to gate several")
    row = result.summary[result.summary["scorer"] == metric]
    if row.empty:
        raise ConfigError(f"--metric {metric}: this evaluation has {', '.join(result.scorers)}")
    low = float(row["ci_low"].iloc[0])
    passed = low == low and low >= args.threshold
    print(f"{'PASS' if passed else 'FAIL'}: {metric} mean {float(row['mean'].iloc[0]):.3f}, 95% interval low end "
          f"{low:.3f} {'>=' if passed else '<'} threshold {args.threshold:.3f}")
    return 0 if passed else 1


if __name__ == "__main__":  # pragma: no cover
    from workbench.cli import main

    sys.exit(main(["eval", *sys.argv[1:]]))
