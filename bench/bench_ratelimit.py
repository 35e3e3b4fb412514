"""A 429 storm: 1,000 rows against `fake/ratelimit?rpm=...` with concurrency 16.

The provider answers at most rpm/60 calls a second (a token bucket of one second's worth) and refuses the rest
with 429 + Retry-After. The evaluation must lose no row, make no row's call twice, and finish within 1.3x of
the time the limit itself imposes ((rows - burst) / rate). Prints the ratio, the 429s absorbed, and the
progress line's concurrency. A baseline in the same run: the same rows on fake/echo (no limit), to show what
the machinery itself costs here.

    .venv/bin/python bench/bench_ratelimit.py [--rows 1000] [--rpm 3000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import private_home


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--rpm", type=float, default=3000.0)
    args = parser.parse_args()
    private_home()
    import os

    os.environ["WORKBENCH_TRACING"] = "memory"  # the bench measures pacing, not trace export
    import pandas as pd

    import workbench
    from workbench.providers.fake_ratelimit import imposed_s, refused, served

    data = pd.DataFrame({"input": [f"row {i}" for i in range(args.rows)],
                         "expected": [f"row {i}" for i in range(args.rows)]})
    workbench.evaluate(data.head(20), "fake/echo", progress=False, cache=False)  # warm: imports, store
    started = time.perf_counter()
    workbench.evaluate(data, "fake/echo", concurrency=16, progress=False, cache=False, scorers=["exact_match"])
    unlimited = time.perf_counter() - started
    model = f"fake/ratelimit?rpm={args.rpm:g}"
    started = time.perf_counter()
    result = workbench.evaluate(data, model, concurrency=16, progress=True, cache=False, scorers=["exact_match"])
    elapsed = time.perf_counter() - started
    answered = served(model)
    floor = imposed_s(args.rows, args.rpm)
    lost = args.rows - int(result.table["output"].notna().sum())
    twice = sum(1 for count in answered.values() if count > 1)
    print(f"rows {args.rows}, rpm {args.rpm:g}: {refused(model)} calls refused with 429 and made again")
    print(f"lost rows {lost}, rows answered twice {twice}, answered calls {sum(answered.values())}")
    print(f"no limit (fake/echo): {unlimited:.2f} s; the limit imposes {floor:.2f} s; rate-limited run {elapsed:.2f} s")
    print(f"ratio {elapsed / floor:.2f}x the imposed time (target <= 1.3x)")
    return 0 if lost == 0 and twice == 0 and sum(answered.values()) == args.rows else 1


if __name__ == "__main__":
    sys.exit(main())
