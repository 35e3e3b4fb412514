"""The tracking floor: MLflow's first import through one gate, 'not found' told by MLflow's error code."""

from __future__ import annotations

import subprocess
import sys

import pytest

from workbench.errors import ConfigError, StoreError
from workbench.tracking import gate, prompts


def test_two_threads_importing_mlflow_at_once_get_the_same_whole_module():
    # MLflow's first import raced between the export thread and the main thread ("partially initialized module").
    probe = """
import threading, workbench.tracking.gate as gate
barrier, found, errors = threading.Barrier(4), [], []
def first_use():
    barrier.wait()
    try:
        module = gate.mlflow()
        found.append((module, module.MlflowClient, module.entities.Metric))
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=first_use) for _ in range(4)]
[t.start() for t in threads]; [t.join() for t in threads]
print(len({id(m) for m, _, _ in found}), len(found), errors)
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip().split(maxsplit=2) == ["1", "4", "[]"]


def _mlflow_error(message: str, code: str):
    from mlflow.exceptions import MlflowException
    from mlflow.protos import databricks_pb2

    gate.mlflow()
    return MlflowException(message, error_code=getattr(databricks_pb2, code))


def test_not_found_is_told_by_the_error_code():
    assert gate.is_not_found(_mlflow_error("whatever the text says", "RESOURCE_DOES_NOT_EXIST"))
    assert not gate.is_not_found(_mlflow_error("Prompt 'x' not found", "INTERNAL_ERROR"))
    assert not gate.is_not_found(ValueError("does not exist"))


def test_a_prompt_load_failure_that_only_says_not_found_is_a_store_error(monkeypatch):
    # An internal error whose text happens to contain "not found" is a broken store, not a missing prompt.
    def broken(mlflow, name, version):
        raise _mlflow_error("connection pool: table not found", "INTERNAL_ERROR")

    monkeypatch.setattr(prompts, "_load", broken)
    with pytest.raises(StoreError, match="loading prompt 'greeting' failed"):
        prompts.prompt("greeting")


def test_a_missing_prompt_is_a_config_error_naming_it(monkeypatch):
    def missing(mlflow, name, version):
        raise _mlflow_error(f"Prompt (name={name}, version=7) not found", "RESOURCE_DOES_NOT_EXIST")

    monkeypatch.setattr(prompts, "_load", missing)
    with pytest.raises(ConfigError, match="no prompt 'greeting' version 7"):
        prompts.prompt("greeting", 7)
