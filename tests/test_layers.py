"""The package's floors (DESIGN.md, "The package"): a module imports from its own floor or below, never above.

Every import is read with `ast`, at module level and inside functions, so a function-level import cannot dodge the
rule. Where a lower floor must reach a higher one, the lower floor owns a registry and the higher one registers
itself; so nothing in workbench/ peeks into `sys.modules`, looks modules up with `find_spec`, or swallows an
ImportError of our own code. The table of floors lives here and nowhere else.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "workbench"

# The one table of floors: the first name under workbench/ -> its floor. The face (workbench/__init__.py) is on top.
FLOORS: dict[str, int] = {
    "errors": 0, "secrets": 0, "scrub": 0, "config": 0, "sqlite_store": 0, "identity": 0, "verbatim": 0,
    "providers": 1,
    "gateway": 2,
    "tracking": 3,
    "tracing": 4,
    "datasets": 5, "signals": 5,
    "evals": 6,
    "finetune": 7,
    "traffic": 8,
    "notebook": 9, "cli": 9, "demo": 9, "doctor": 9, "__main__": 9,
    "__init__": 10,
}


@dataclass(frozen=True)
class Edge:
    source: str  # dotted module name
    target: str  # dotted module name it imports
    line: int
    typing_only: bool = False  # under `if TYPE_CHECKING:`: never runs, so it can make no import cycle


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _exists(dotted: str) -> bool:
    """A module or package of ours with this dotted name."""
    base = PACKAGE.parent.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "labextension" not in p.parts)


def floor_of(dotted: str) -> int:
    parts = dotted.split(".")
    if parts == ["workbench"]:
        return FLOORS["__init__"]
    key = parts[1]
    assert key in FLOORS, f"workbench.{key} has no floor: add it to FLOORS in tests/test_layers.py"
    return FLOORS[key]


def _resolve_from(source: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    package = source.split(".") if is_package else source.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def edges(path: Path) -> Iterator[Edge]:
    """Every import of our own modules in one file, wherever it sits (module level, functions, TYPE_CHECKING)."""
    source = _module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.If) and _is_type_checking(node.test)
                   for statement in node.body for inner in ast.walk(statement)}
    for node in ast.walk(tree):
        hint = id(node) in typing_only
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "workbench" or alias.name.startswith("workbench."):
                    yield Edge(source, alias.name, node.lineno, hint)
        elif isinstance(node, ast.ImportFrom):
            module = _resolve_from(source, _is_package(path), node)
            if not (module == "workbench" or module.startswith("workbench.")):
                continue
            for alias in node.names:
                # `from workbench.evals import runner` imports a submodule; `from workbench import complete`, the face
                submodule = f"{module}.{alias.name}"
                yield Edge(source, submodule if _exists(submodule) else module, node.lineno, hint)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            target = node.args[0].value
            if name == "import_module" and isinstance(target, str) and target.startswith("workbench"):
                yield Edge(source, target, node.lineno)


ALL_EDGES = [edge for path in modules() for edge in edges(path)]


def test_the_table_knows_every_module():
    unknown = sorted({p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in modules()} - set(FLOORS))
    assert unknown == [], f"modules with no floor: {unknown}; add them to FLOORS in tests/test_layers.py"


def test_no_module_imports_from_a_higher_floor():
    upward = [f"{e.source}:{e.line} (floor {floor_of(e.source)}) imports {e.target} (floor {floor_of(e.target)})"
              for e in ALL_EDGES if floor_of(e.target) > floor_of(e.source)]
    assert upward == [], "imports that run upward:\n" + "\n".join(upward)


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), over every import that runs."""
    graph: dict[str, set[str]] = {}
    for e in ALL_EDGES:
        if e.source != e.target and not e.typing_only:
            graph.setdefault(e.source, set()).add(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles():
    # a package's __init__ that re-exports its modules is not a cycle unless a module imports the package back
    cycles = _cycles()
    assert cycles == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def _texts() -> Iterator[tuple[Path, ast.Module]]:
    for path in modules():
        yield path, ast.parse(path.read_text(encoding="utf-8"))


def _is_sys_modules(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "modules"
            and isinstance(node.value, ast.Name) and node.value.id == "sys")


def _key(node: ast.expr, constants: dict[str, str], module: str) -> str:
    """The module name a lookup is about: a literal, a module-level constant, __name__, or "?" when unknowable."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return module if node.id == "__name__" else constants.get(node.id, "?")
    return "?"


def _hidden_edges(path: Path, tree: ast.Module) -> Iterator[str]:
    """Lookups of our own modules that no import shows. Asking whether a third-party library ("torch",
    "IPython") is loaded already is fine: that is not an edge between our floors."""
    module = _module_name(path)
    constants = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
                 and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
                 for t in n.targets if isinstance(t, ast.Name)}
    where = f"{path.relative_to(PACKAGE.parent)}"
    for node in ast.walk(tree):
        keys: list[tuple[str, str]] = []
        if isinstance(node, ast.Subscript) and _is_sys_modules(node.value):
            keys.append(("sys.modules[...]", _key(node.slice, constants, module)))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and _is_sys_modules(node.func.value):
            key = _key(node.args[0], constants, module) if node.args else "?"
            keys.append((f"sys.modules.{node.func.attr}()", key))
        elif isinstance(node, ast.Compare) and any(_is_sys_modules(c) for c in node.comparators):
            keys.append(("... in sys.modules", _key(node.left, constants, module)))
        elif (isinstance(node, ast.Call) and node.args and _names(node.func) & {"find_spec"}
              and _key(node.args[0], constants, module).startswith("workbench")):
            keys.append(("find_spec()", _key(node.args[0], constants, module)))
        for what, key in keys:
            if key == "?" or key.startswith("workbench"):
                yield f"{where}:{node.lineno}: {what} on {key}"


def test_nothing_peeks_into_sys_modules_or_finds_our_modules_by_spec():
    found = [hit for path, tree in _texts() for hit in _hidden_edges(path, tree)]
    assert found == [], "hidden edges (import it, or use a registry the higher floor fills):\n" + "\n".join(found)


_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError"}


def _names(node: ast.expr | None) -> set[str]:
    if node is None:
        return set()
    if isinstance(node, ast.Tuple):
        return set().union(*(_names(n) for n in node.elts))
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, ast.Attribute):
        return {node.attr}
    return set()


def _imports_ours(body: list[ast.stmt], source: str, is_package: bool) -> bool:
    for statement in body:
        for node in ast.walk(statement):
            if isinstance(node, ast.Import) and any(a.name.startswith("workbench") for a in node.names):
                return True
            if isinstance(node, ast.ImportFrom) and _resolve_from(source, is_package, node).startswith("workbench"):
                return True
    return False


def test_no_import_error_of_our_own_code_is_swallowed():
    found = []
    for path, tree in _texts():
        source, is_package = _module_name(path), _is_package(path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Try):
                caught = set().union(*(_names(h.type) for h in node.handlers)) if node.handlers else set()
                if caught & _IMPORT_ERRORS and _imports_ours(node.body, source, is_package):
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: except ImportError")
            elif isinstance(node, ast.With):
                for item in node.items:
                    call = item.context_expr
                    if (isinstance(call, ast.Call) and _names(call.func) & {"suppress"}
                            and set().union(*(_names(a) for a in call.args)) & _IMPORT_ERRORS
                            and _imports_ours(node.body, source, is_package)):
                        found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: suppress(ImportError)")
    assert found == [], "an ImportError of our own code must raise:\n" + "\n".join(found)


def _face() -> ast.Module:
    return ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))


def _literal(tree: ast.Module, name: str) -> object:
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets) and node.value is not None:
            return ast.literal_eval(node.value)
    raise AssertionError(f"workbench/__init__.py has no literal {name}")


def test_lazy_exports_and_their_type_checking_mirror_name_the_same_things():
    import workbench

    exports: dict[str, str] = _literal(_face(), "_EXPORTS")  # type: ignore[assignment]
    modules: dict[str, str] = _literal(_face(), "_MODULES")  # type: ignore[assignment]  # names that are modules
    mirrored: dict[str, str] = {}
    for node in _face().body:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in ast.walk(node):
                if isinstance(statement, ast.ImportFrom):
                    for alias in statement.names:
                        submodule = f"{statement.module}.{alias.name}"
                        mirrored[alias.asname or alias.name] = submodule if _exists(submodule) else statement.module
    assert mirrored == {**exports, **modules}, "the TYPE_CHECKING mirror and _EXPORTS/_MODULES differ"
    assert sorted(workbench.__all__) == sorted([*exports, *modules, "__version__"])
    for name in workbench.__all__:
        assert getattr(workbench, name) is not None, name


def _is_docstring_or_future(node: ast.stmt) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)) or (
        isinstance(node, ast.ImportFrom) and node.module == "__future__")


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_declares_all(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if path.name == "__main__.py" or all(_is_docstring_or_future(n) for n in tree.body):
        return  # a script, or a package whose __init__ holds only its docstring
    targets = [t for n in tree.body if isinstance(n, ast.Assign) for t in n.targets]
    targets += [n.target for n in tree.body if isinstance(n, ast.AnnAssign)]
    declared = any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets)
    assert declared, f"{path.relative_to(PACKAGE.parent)} has no __all__"
