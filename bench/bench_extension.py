"""The trace view in a real browser (issue 7): a 1,000-span trace, from output arrival to first paint.

Output arrival is when the kernel's display message reaches the page's websocket (a listener installed
before JupyterLab's own); first paint is the first frame after the view's node is in the document. The
baseline, measured in the same run on the same trace, is JupyterLab's own rendering of the bundle's
`text/html` fallback. Median of several runs each; target <= 300 ms. Nothing is asserted.

Needs Chromium at /usr/bin/chromium and the labextension installed (`make install`).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "browser"))

from lab import Notebook, chromium_missing, open_browser, start_lab  # noqa: E402

RUNS = 7
TARGET_MS = 300

BUILD = '''\
import random
from IPython.display import display
from workbench.tracing.records import SpanRecord, TraceRecord
from workbench.tracing.view import TraceView

MS = 1_000_000
rng = random.Random(7)
t0 = 1_700_000_000_000 * MS
trace = TraceRecord("tr-" + "be" * 16, "sqlite:///unused", finished=True)
root = SpanRecord("%016x" % 1, None, "evaluate_golden_set", "chain", t0, t0 + 60_000 * MS, "OK",
                  inputs={"dataset": "golden", "rows": 111})
trace.spans.append(root)
kinds = ["retriever", "llm", "parser", "tool", "reranker", "guardrail", "embedding", "evaluator"]
n = 2
for row in range(111):
    start = t0 + row * 500 * MS
    group = SpanRecord("%016x" % n, root.span_id, f"row {row}", "chain", start, start + 480 * MS, "OK",
                       inputs={"question": f"question {row}: " + "why " * 20})
    trace.spans.append(group)
    n += 1
    at = start
    for kind in kinds:
        took = rng.randint(5, 60) * MS
        failed = kind == "tool" and row % 10 == 3
        attrs = {"model_used": "fake/echo", "prompt_tokens": 40, "completion_tokens": 12, "cost_usd": 0.000064} \\
            if kind == "llm" else {}
        span = SpanRecord("%016x" % n, group.span_id, f"{kind} step {row}", kind, at, at + took,
                          "ERROR" if failed else "OK", "ValueError" if failed else None,
                          "Invalid address" if failed else None,
                          inputs={"messages": [{"role": "user", "content": f"row {row}: " + "context " * 25}]}
                          if kind == "llm" else {"query": f"row {row} " + "x" * 80},
                          outputs="answer " * 30, attributes=attrs)
        trace.spans.append(span)
        n += 1
        at += took
view = TraceView(trace)
full = view._repr_mimebundle_()
fallback = {"text/html": full["text/html"], "text/plain": full["text/plain"]}
print(len(trace.spans), "spans;", len(view.html), "bytes of HTML")'''

CELLS = [BUILD, "display(full, raw=True)", "display(fallback, raw=True)"]

# Records when each big websocket message arrives (before JupyterLab handles it) and when the next view
# (ours, or the HTML fallback) is painted after it.
PROBE = '''
(() => {
  window.__wbArrivals = [];
  window.__wbPaints = [];
  const Native = window.WebSocket;
  window.WebSocket = function (...args) {
    const socket = new Native(...args);
    socket.addEventListener('message', event => {
      const data = event.data;
      const size = typeof data === 'string' ? data.length : (data.byteLength || data.size || 0);
      if (size > 50000) window.__wbArrivals.push(performance.now());
    });
    return socket;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
  const painted = kind => requestAnimationFrame(() => setTimeout(() => window.__wbPaints.push([kind, performance.now()]), 0));
  new MutationObserver(records => {
    for (const record of records) {
      for (const node of record.addedNodes) {
        if (!(node instanceof Element)) continue;
        const has = selector => node.matches(selector) || node.querySelector(selector);
        if (has('[data-mime-type="application/vnd.workbench.trace+json"]')) painted('extension');
        else if (has('[data-mime-type="text/html"]')) painted('html');
      }
    }
  }).observe(document, { childList: true, subtree: true });
})();
'''


def measure(notebook: Notebook, cell: int, kind: str) -> tuple[float, float | None]:
    page = notebook.page
    page.evaluate("() => { window.__wbArrivals = []; window.__wbPaints = []; }")
    notebook.run(cell)
    page.wait_for_function(f"() => window.__wbPaints.some(p => p[0] === '{kind}')", timeout=60_000)
    arrivals, paints = page.evaluate("() => [window.__wbArrivals, window.__wbPaints]")
    painted = next(t for k, t in paints if k == kind)
    arrived = max(t for t in arrivals if t <= painted)
    inner = None
    if kind == "extension":
        value = notebook.output(cell).locator(".wb-traceview").get_attribute("data-wb-render-ms")
        inner = float(value) if value else None
    return painted - arrived, inner


def main() -> None:
    reason = chromium_missing()
    if reason:
        print(f"skipped: {reason}")
        return
    from playwright.sync_api import sync_playwright

    lab = start_lab()
    try:
        lab.write_notebook("bench.ipynb", CELLS)
        profiles = tempfile.TemporaryDirectory(prefix="wb-chromium-", ignore_cleanup_errors=True)
        with sync_playwright() as playwright, profiles as profile:
            context = open_browser(playwright, Path(profile))
            context.add_init_script(PROBE)
            page = context.pages[0] if context.pages else context.new_page()
            notebook = Notebook(page, lab, "bench.ipynb").open()
            print(notebook.run(0).inner_text().strip())
            results: dict[str, list[float]] = {"extension": [], "html": []}
            inner: list[float] = []
            for kind, cell in (("extension", 1), ("html", 2)):
                measure(notebook, cell, kind)  # warm-up: first-use compilation in the page
            start = time.perf_counter()
            for _ in range(RUNS):  # interleaved, so drift on a shared machine hits both alike
                for kind, cell in (("extension", 1), ("html", 2)):
                    total, own = measure(notebook, cell, kind)
                    results[kind].append(total)
                    if own is not None:
                        inner.append(own)
            context.close()
    finally:
        lab.stop()
    ext, html = statistics.median(results["extension"]), statistics.median(results["html"])
    print(f"1,000-span trace, output arrival -> first paint, median of {RUNS} runs "
          f"({time.perf_counter() - start:.0f} s in all):")
    print(f"  trace view (extension): {ext:7.1f} ms   runs {', '.join(f'{x:.0f}' for x in results['extension'])}"
          f"   target <= {TARGET_MS} ms: {'met' if ext <= TARGET_MS else 'MISSED'}")
    print(f"  of which the renderer itself (renderModel -> paint): {statistics.median(inner):.1f} ms")
    print(f"  baseline, JupyterLab's HTML fallback: {html:7.1f} ms   runs "
          f"{', '.join(f'{x:.0f}' for x in results['html'])}")
    print(f"  ratio extension / HTML fallback: {ext / html:.2f}x")


if __name__ == "__main__":
    main()
