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
