"""Gateway benchmarks (issue 2): overhead over raw litellm, import time, cache-hit latency.

Each figure is a ratio against a baseline measured in this same run; nothing is asserted.
"""

from __future__ import annotations

import subprocess
import sys

from _common import median, private_home, timed_ms

CALLS = 500


def gateway_overhead() -> None:
    import litellm

    import workbench as wb

    messages = [{"role": "user", "content": "benchmark prompt with a few words"}]
    wb.complete("warm up", "fake/echo", cache=False)
    litellm.completion(model="openai/gpt-4o-mini", messages=messages, mock_response="warm")
    # interleave the two so drift on a shared machine hits both alike
    raw, ours = [], []
    for i in range(CALLS):
        raw += timed_ms(lambda: litellm.completion(model="openai/gpt-4o-mini", messages=messages,
                                                   mock_response="benchmark prompt with a few words"), 1)
        ours += timed_ms(lambda: wb.complete(messages, "fake/echo", cache=False), 1)
    print(f"gateway overhead: raw litellm mock median {median(raw):.3f} ms, workbench.complete fake/echo median "
          f"{median(ours):.3f} ms, ratio {median(ours) / median(raw):.2f}x (target <= 1.2x)")


def cache_hit() -> None:
    import workbench as wb

    wb.complete("cached benchmark prompt", "fake/echo")
    hits = timed_ms(lambda: wb.complete("cached benchmark prompt", "fake/echo"), 500)
    print(f"cache hit: median {median(hits):.3f} ms over 500 hits (target <= 2 ms)")


def import_time() -> None:
    def run(code: str) -> float:
        return median(timed_ms(lambda: subprocess.run([sys.executable, "-c", code], check=True), 15))

    bare, ours = run("pass"), run("import workbench")
    print(f"import: python -c pass {bare:.1f} ms, import workbench {ours:.1f} ms, "
          f"difference {(ours - bare) / 1000:.3f} s (target < 0.15 s)")


if __name__ == "__main__":
    private_home()
    import_time()
    gateway_overhead()
    cache_hit()
