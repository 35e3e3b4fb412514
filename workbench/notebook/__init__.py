"""The notebook layer: `%%llm` magics, rich display, session history. The only place that imports IPython.

Nothing heavy loads here; `%load_ext workbench` calls `load(ipython)`.
"""

from __future__ import annotations

from workbench.notebook.extension import load, unload

__all__ = ["load", "unload"]
