"""The public face is typed: no function exported from workbench/__init__.py takes or returns `Any`.

mypy checks the package against these hints (py.typed ships), so users' type checkers see real types; an `Any`
there would switch their checks off at the first call into Workbench.
"""

from __future__ import annotations

import inspect
import re

import pytest

import workbench

_ANY = re.compile(r"\bAny\b")


def _functions() -> list[str]:
    return [name for name in workbench.__all__ if inspect.isfunction(getattr(workbench, name))]


@pytest.mark.parametrize("name", _functions())
def test_no_public_function_takes_or_returns_any(name: str) -> None:
    signature = inspect.signature(getattr(workbench, name))  # annotations are strings (from __future__)
    loose = [f"{p.name}: {p.annotation}" for p in signature.parameters.values()
             if p.annotation is not inspect.Parameter.empty and _ANY.search(str(p.annotation))]
    if signature.return_annotation is not inspect.Signature.empty and _ANY.search(str(signature.return_annotation)):
        loose.append(f"-> {signature.return_annotation}")
    assert loose == [], f"workbench.{name} has Any in its signature: {loose}"


def test_every_public_function_is_annotated() -> None:
    missing = [name for name in _functions()
               if inspect.signature(getattr(workbench, name)).return_annotation is inspect.Signature.empty]
    assert missing == []
