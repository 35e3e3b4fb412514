"""Signals: thumbs, stars, corrections, comments and winner picks on a call's trace (MLflow assessments),
and their export as training data (`workbench.training_data`). Nothing heavy is imported here."""

from __future__ import annotations

__all__: list[str] = []
