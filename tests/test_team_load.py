"""Many kernels, one MLflow (issue 13, section 3), bounded: 4 processes x 50 calls + feedback on every 10th,
tracing to `mlflow server` on PostgreSQL. Every trace and assessment must be stored, none lost, and no process
or server may report "database is locked". Latency and lag are the benchmark's business
(bench/bench_team_load.py, which this test shares its harness with), never asserted here.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
PROCS, CALLS, FEEDBACK_EVERY = 4, 50, 10


def _harness():
    spec = importlib.util.spec_from_file_location("bench_team_load", ROOT / "bench" / "bench_team_load.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def load():
    from test_mlflow_server import _ensure_postgres

    _ensure_postgres()
    harness = _harness()
    with harness.team_stack() as stack:  # stops the server's and PostgreSQL's process groups on the way out
        yield harness, stack


def test_every_trace_and_assessment_from_many_kernels_is_stored(load):
    harness, stack = load
    result = harness.run_load(stack, procs=PROCS, calls=CALLS, tracing=True, feedback_every=FEEDBACK_EVERY,
                              experiment="load-test", ready_wait_s=300, run_wait_s=300)
    assert result.errors == []
    assert result.flushed, "a process could not flush its traces within 600 s"
    expected_assessments = PROCS * sum(1 for i in range(1, CALLS) if i % FEEDBACK_EVERY == 0)
    assert result.assessments == expected_assessments
    assert len(result.trace_ids) == len(set(result.trace_ids)) == PROCS * CALLS

    stored = harness.count_stored(stack, "load-test", result.trace_ids)
    assert stored.missing == [] and stored.traces == PROCS * CALLS
    assert stored.assessments == expected_assessments
    assert stored.extra == 0
    assert result.locked == [] and harness.server_locked(stack) == []
