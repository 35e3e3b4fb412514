"""`%load_ext workbench` in a fresh IPython against a bare IPython start (issue 3). Target: < 0.15 s more.

Both run as subprocesses (`python -m IPython --quick -c ...`, history in memory, a private IPYTHONDIR),
interleaved so drift on a shared machine hits both alike; medians of REPEAT runs. Nothing is asserted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from _common import median, private_home, timed_ms

REPEAT = 15
_ARGS = ["-m", "IPython", "--quick", "--no-banner", "--HistoryManager.hist_file=:memory:", "--colors=nocolor"]


def _ipython(code: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, *_ARGS, "-c", code], check=True, env=env, stdout=subprocess.DEVNULL)


def main() -> None:
    private_home()
    env = dict(os.environ, IPYTHONDIR=tempfile.mkdtemp(prefix="wb-bench-ipython-"))
    load = "%load_ext workbench"
    _ipython("pass", env)  # warm the OS file cache and create the IPython dir, for both alike
    _ipython(load, env)
    bare, loaded = [], []
    for _ in range(REPEAT):
        bare += timed_ms(lambda: _ipython("pass", env), 1)
        loaded += timed_ms(lambda: _ipython(load, env), 1)
    # The extension's own share, measured inside one process (no interpreter start in it).
    probe = (
        "import time; from IPython.core.interactiveshell import InteractiveShell\n"
        "from traitlets.config import Config; c = Config(); c.HistoryManager.hist_file = ':memory:'\n"
        "ip = InteractiveShell.instance(config=c); t = time.perf_counter()\n"
        "ip.run_line_magic('load_ext', 'workbench'); print((time.perf_counter() - t) * 1000)"
    )
    inside = [float(subprocess.run([sys.executable, "-c", probe], check=True, env=env, capture_output=True,
                                   text=True).stdout) for _ in range(5)]
    difference = (median(loaded) - median(bare)) / 1000
    print(f"IPython start: bare {median(bare):.0f} ms, with %load_ext workbench {median(loaded):.0f} ms "
          f"(medians of {REPEAT}); difference {difference:.3f} s (target < 0.15 s); "
          f"%load_ext alone, in process: {median(inside):.1f} ms; ratio {median(loaded) / median(bare):.2f}x")


if __name__ == "__main__":
    main()
