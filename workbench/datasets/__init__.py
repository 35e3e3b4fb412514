"""Golden datasets: rows with human-checked answers, from cell outputs, files and DataFrames; versions by digest.

Nothing heavy is imported here; `workbench.golden(name)` loads the store on first use.
"""

from __future__ import annotations

__all__: list[str] = []
