"""Evaluation throughput: 200 rows on fake/slow?ms=100 with exact_match plus a fake/ judge (similarity).

Sequential (concurrency=1) vs concurrency=16 vs mlflow.genai.evaluate on the same rows and scorers, one
run, one store created beforehand. Prints wall times, ratios, and how long after each evaluation every
row's trace is readable from the store. Targets: concurrency 16 within 1.5 s; >= 5x faster than a warm
mlflow.genai.evaluate.

    .venv/bin/python bench/bench_evals.py [--rows 200] [--skip-sequential]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import private_home  # noqa: E402

JUDGE_REPLY = '{"score": 5, "rationale": "same"}'
MODEL = "fake/slow?ms=100"


def _readable(trace_ids: list[str], started: float) -> float:
    """Seconds from `started` until every trace id can be read back from the store."""
    from workbench.tracing import flush
    from workbench.tracking.backend import backend, current_uri

    flush(120)
    store = backend(current_uri()).store
    missing = list(trace_ids)
    while missing:
        still = []
        for trace_id in missing:
            try:
                store.get_trace_info(trace_id)
            except Exception:
                still.append(trace_id)
        missing = still
        if missing:
            time.sleep(0.05)
    return time.perf_counter() - started


def ours(frame, concurrency: int) -> tuple[float, float, object]:
    import workbench
    from workbench.providers import fake

    fake.enqueue([JUDGE_REPLY] * len(frame))
    started = time.perf_counter()
    result = workbench.evaluate(frame, MODEL, scorers=["exact_match", "similarity"], judge="fake/script",
                                concurrency=concurrency, cache=False, progress=False)
    wall = time.perf_counter() - started
    ids = [t for t in result.table["trace_id"].tolist() + result.table["similarity_trace_id"].tolist() if t]
    return wall, _readable(ids, started), result


def theirs(frame) -> tuple[float, float, object]:
    """mlflow.genai.evaluate: the same model call (through the gateway) and the same two scorers."""
    import mlflow
    from mlflow.genai.scorers import scorer

    import workbench
    from workbench.evals.parsing import parse_score
    from workbench.evals.scoring import SIMILARITY_PROMPT, _fill, normalize
    from workbench.providers import fake

    @scorer
    def exact_match(outputs, expectations) -> float:
        return float(normalize(outputs) == normalize(expectations["expected_response"]))

    @scorer
    def similarity(inputs, outputs, expectations) -> float:
        prompt = _fill(SIMILARITY_PROMPT, input=inputs["question"], expected=expectations["expected_response"],
                       output=outputs)
        return parse_score(workbench.complete(prompt, "fake/script", temperature=0, cache=False).text)[0]

    def predict(question: str) -> str:
        return workbench.complete(question, MODEL, cache=False).text

    data = [{"inputs": {"question": q}, "expectations": {"expected_response": e}}
            for q, e in zip(frame["input"], frame["expected"], strict=True)]
    fake.enqueue([JUDGE_REPLY] * len(data))
    started = time.perf_counter()
    result = mlflow.genai.evaluate(data=data, predict_fn=predict, scorers=[exact_match, similarity])
    wall = time.perf_counter() - started
    ids = [t for t in result.result_df["trace_id"].tolist() if t]
    return wall, _readable(ids, started), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--skip-sequential", action="store_true")
    args = parser.parse_args()
    private_home()
    os.environ.setdefault("MLFLOW_GENAI_EVAL_MAX_WORKERS", "16")  # the same parallelism as ours
    import logging
    import warnings

    import pandas as pd

    import workbench
    from workbench.tracking.backend import ensure_mlflow

    warnings.filterwarnings("ignore")
    mlflow = ensure_mlflow()  # the store is created before any timing
    mlflow.set_experiment("bench-evals")
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
    frame = pd.DataFrame({"input": [f"bench question {i}" for i in range(args.rows)],
                          "expected": [f"bench question {i}" for i in range(args.rows)]})
    warm = frame.head(16).assign(input=lambda f: "warm " + f["input"])
    workbench.complete("warm up", MODEL, cache=False)
    ours(warm, 16)  # warm: imports, plots, the run path
    theirs(warm)  # a warm mlflow.genai.evaluate, as the target says

    rows = []
    if not args.skip_sequential:
        wall, readable, _ = ours(frame, 1)
        rows.append(("workbench.evaluate concurrency=1", wall, readable))
    wall16, readable16, result = ours(frame, 16)
    rows.append(("workbench.evaluate concurrency=16", wall16, readable16))
    assert result.mean("exact_match") == 1.0 and result.mean("similarity") == 5.0
    wall_ml, readable_ml, _ = theirs(frame)
    rows.append(("mlflow.genai.evaluate (16 workers)", wall_ml, readable_ml))

    print(f"\n{args.rows} rows, {MODEL}, exact_match + fake/script judge (similarity), no cache")
    print(f"{'':38} {'wall s':>8} {'traces readable s':>18}")
    for name, wall, readable in rows:
        print(f"{name:38} {wall:8.2f} {readable:18.2f}")
    if not args.skip_sequential:
        print(f"concurrency=16 vs sequential: {rows[0][1] / wall16:.1f}x faster")
    print(f"concurrency=16 vs mlflow.genai.evaluate: {wall_ml / wall16:.1f}x faster (target >= 5x); "
          f"concurrency=16 wall {wall16:.2f} s (target <= 1.5 s)")


if __name__ == "__main__":
    main()
