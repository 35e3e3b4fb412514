"""Tracing benchmarks (issue 4): the cost of tracing a call, export lag, and rendering a big trace.

Each figure is compared with a baseline measured in this same run; nothing is asserted.
"""

from __future__ import annotations

import json
import statistics
import time

from _common import median, private_home

CALLS = 500
SPANS = 1000


def _loop(wb, label: str) -> tuple[list[float], list[str]]:
    samples, ids = [], []
    for i in range(CALLS):
        start = time.perf_counter()
        response = wb.complete(f"{label} benchmark prompt number {i}", "fake/echo", cache=False)
        samples.append((time.perf_counter() - start) * 1000)
        ids.append(response.trace_id)
    return samples, ids


def tracing_overhead() -> None:
    import workbench as wb
    from workbench import tracing
    from workbench.tracing import exporter
    from workbench.tracking.backend import backend, current_uri

    start = time.perf_counter()
    wb.complete("warm up", "fake/echo", cache=False)
    tracing.flush(300)
    print(f"first trace stored after {time.perf_counter() - start:.2f} s (litellm and MLflow imports, store "
          "creation: once per process)")
    rounds = []
    for _ in range(2):  # off/on twice, so drift on a shared machine shows
        wb.configure(tracing=False)
        off, _ = _loop(wb, "off")
        wb.configure(tracing=True)
        before = exporter.exported_count()
        on, ids = _loop(wb, "on")
        loop_end = time.perf_counter()
        assert tracing.flush(600)
        flushed = time.perf_counter() - loop_end
        read_start = time.perf_counter()
        client = backend(current_uri()).client
        found = sum(len(client.batch_get_traces(ids[i:i + 100])) for i in range(0, len(ids), 100))
        read_s = time.perf_counter() - read_start
        rounds.append((off, on, flushed, read_s, found, exporter.exported_count() - before))
    # the hot path alone: spans recorded, export held back
    original, exporter.submit = exporter.submit, lambda trace: None
    try:
        wb.configure(tracing=False)
        off, _ = _loop(wb, "off")
        wb.configure(tracing=True)
        recorded, _ = _loop(wb, "on")
    finally:
        exporter.submit = original
    print(f"recording only (no export): off mean {statistics.fmean(off):.3f} ms, on mean "
          f"{statistics.fmean(recorded):.3f} ms, added {statistics.fmean(recorded) - statistics.fmean(off):+.3f} ms per call")
    for number, (off, on, flushed, read_s, found, written) in enumerate(rounds, 1):
        mean_off, mean_on = statistics.fmean(off), statistics.fmean(on)
        print(f"round {number}: {CALLS} fake/echo calls: tracing off mean {mean_off:.3f} ms (median {median(off):.3f}), "
              f"on mean {mean_on:.3f} ms (median {median(on):.3f}); ratio {mean_on / mean_off:.2f}x "
              f"(target <= 1.2x), added {mean_on - mean_off:+.3f} ms per call")
        print(f"round {number}: all {CALLS} traces readable {flushed:.2f} s after the last call "
              f"({written} written, {found} read back in {read_s:.2f} s)")


def big_trace() -> None:
    import workbench as wb
    from workbench.tracing import exporter
    from workbench.tracing.bundle import build_bundle
    from workbench.tracing.render_html import render_html
    from workbench.tracing.view import get_trace

    original, exporter.submit = exporter.submit, lambda trace: None  # rendering only: keep it out of the store
    try:
        with wb.span("big", kind="chain") as root:
            for i in range(SPANS - 1):
                kind = "llm" if i % 3 == 0 else "tool"
                with wb.span(f"step {i}", kind=kind, inputs={"question": f"question {i} about the order"}) as step:
                    step.set_outputs(f"answer {i}: the order shipped on Monday")
                    if kind == "llm":
                        step.set_attributes({"prompt_tokens": 12, "completion_tokens": 9, "cost_usd": 3e-5})
        trace = get_trace(root.trace_id)
    finally:
        exporter.submit = original
    bundle_ms, html_ms = [], []
    for _ in range(7):
        start = time.perf_counter()
        bundle = build_bundle(trace)
        middle = time.perf_counter()
        html = render_html(bundle)
        bundle_ms.append((middle - start) * 1000)
        html_ms.append((time.perf_counter() - middle) * 1000)
    total = [b + h for b, h in zip(bundle_ms, html_ms, strict=True)]
    size = len(json.dumps(bundle, ensure_ascii=False))
    print(f"{SPANS}-span trace: bundle {median(bundle_ms):.1f} ms + HTML {median(html_ms):.1f} ms = "
          f"{median(total):.1f} ms median (target <= 50 ms); HTML {len(html) / 1024:.0f} KiB, "
          f"bundle JSON {size / 1024:.0f} KiB; limits {bundle['limits']}")


if __name__ == "__main__":
    private_home()
    tracing_overhead()
    big_trace()
