"""Evaluations: scorers and LLM judges, the runner, comparisons, the regression gate, judge calibration.

Nothing heavy is imported here; `workbench.evaluate(...)` loads pandas, numpy and MLflow on first use.
"""

from __future__ import annotations

__all__: list[str] = []
