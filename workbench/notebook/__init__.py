"""The notebook layer: `%%llm` magics, rich display, session history. The only place that imports IPython.

Nothing heavy loads here; `%load_ext workbench` calls `load(ipython)`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load", "unload"]


def load(ipython: Any) -> None:
    from workbench.notebook.extension import load as _load

    _load(ipython)


def unload(ipython: Any) -> None:
    from workbench.notebook.extension import unload as _unload

    _unload(ipython)
