"""`import workbench` must not pull in the heavy stack: it loads on first use."""

import subprocess
import sys

HEAVY = ["torch", "transformers", "peft", "trl", "mlflow", "litellm", "pandas", "ipywidgets"]


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_import_workbench_loads_no_heavy_library():
    loaded = _modules_after("import workbench")
    assert "workbench" in loaded
    assert sorted(set(HEAVY) & loaded) == []


def test_public_names_resolve_lazily():
    import workbench

    for name in workbench.__all__:
        assert getattr(workbench, name) is not None


def test_load_ext_loads_the_notebook_floor_and_no_stage():
    # %load_ext has a 0.15 s budget (bench/bench_load_ext.py): a magic imports the stage it calls when it runs
    loaded = _modules_after(
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "from traitlets.config import Config\n"
        "c = Config(); c.HistoryManager.hist_file = ':memory:'\n"
        "InteractiveShell.instance(config=c).run_line_magic('load_ext', 'workbench')"
    )
    assert "workbench.notebook.magics" in loaded
    stages = ("tracing", "tracking", "datasets", "signals", "evals", "finetune", "traffic")
    assert sorted(m for m in loaded if m.split(".")[:2][-1] in stages and m.startswith("workbench.")) == []
    assert sorted(set(HEAVY) & loaded) == []
