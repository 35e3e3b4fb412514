"""Every warning Workbench gives is a WorkbenchWarning (issue 10): one category filters them all.

Read with `ast`, so a warning on a path no test reaches is checked too; a warn() without a category (UserWarning)
or with a library's category fails here.
"""

from __future__ import annotations

import ast
import builtins
import importlib
from pathlib import Path

from workbench.errors import WorkbenchWarning

PACKAGE = Path(__file__).resolve().parents[1] / "workbench"


def _warn_calls() -> list[tuple[Path, ast.Call]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "warn"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "warnings"):
                found.append((path, node))
    return found


def _category(call: ast.Call) -> str | None:
    expression = call.args[1] if len(call.args) > 1 else next(
        (k.value for k in call.keywords if k.arg == "category"), None)
    return ast.unparse(expression) if expression is not None else None


def _resolve(path: Path, name: str) -> object:
    module = importlib.import_module(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
    head, *rest = name.split(".")
    value = getattr(module, head, None) or getattr(builtins, head)
    for part in rest:
        value = getattr(value, part)
    return value


def test_every_warning_is_a_workbench_warning() -> None:
    calls = _warn_calls()
    assert len(calls) > 10  # the walk found the package's warnings
    wrong = []
    for path, call in calls:
        name = _category(call)
        category = _resolve(path, name) if name else None
        if not (isinstance(category, type) and issubclass(category, WorkbenchWarning)):
            wrong.append(f"{path.relative_to(PACKAGE.parent)}:{call.lineno} category {name}")
    assert wrong == []
