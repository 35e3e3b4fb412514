"""`workbench.traffic`: rollouts. A baseline and a candidate behind one model name, variant tags on every call,
per-variant monitoring (`workbench.rollout`, `workbench.rollout_report`)."""

from __future__ import annotations

from workbench.traffic.live import get_rollout, rollouts
from workbench.traffic.monitor import RolloutReport, rollout_report
from workbench.traffic.routing import Rollout, rollout

__all__ = ["Rollout", "RolloutReport", "rollout", "rollout_report", "rollouts", "get_rollout"]
