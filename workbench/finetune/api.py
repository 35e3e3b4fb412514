"""`workbench.finetune.lora(...)` and `workbench.finetune.dpo(...)`: the public calls.

Both check every option here (errors quote the bad value), start the child process, and then either block with a
live progress view and return the Adapter (`wait=True`), or return the FineTuneJob at once (`wait=False`).
"""

from __future__ import annotations

from typing import Any

from workbench.datasets.golden import resolve_data
from workbench.errors import ConfigError
from workbench.evals.runner import DEFAULT_SCORERS, check_scorers
from workbench.finetune.adapter import Adapter
from workbench.finetune.job import EvalPlan, FineTuneJob
from workbench.finetune.options import TrainData, TrainOptions, check_base, check_name, preference_rows, sft_rows

__all__ = ["lora", "dpo"]


def _evaluation(eval_data: Any, scorers: Any, gate_metric: str | None, min_delta: float, prompt: Any,
                eval_params: dict[str, Any] | None, gate_test: str = "superiority",
                gate_margin: float | None = None) -> EvalPlan | None:
    if eval_data is None:
        if scorers is not None or gate_metric is not None:
            raise ConfigError("scorers= and gate_metric= apply to the re-evaluation: pass eval_data=<golden dataset> "
                              "too, or leave them out")
        return None
    dataset = resolve_data(eval_data)  # a missing dataset fails now, not after training
    if not dataset.rows:
        raise ConfigError(f"eval_data={dataset.name!r} has no rows: add some, or leave eval_data out")
    if isinstance(min_delta, bool) or not isinstance(min_delta, int | float):
        raise ConfigError(f"min_delta={min_delta!r} must be a number, e.g. min_delta=0.0")
    # checked now, not after the training they would follow
    names = [s.name for s in check_scorers(scorers, None)] if scorers is not None else list(DEFAULT_SCORERS)
    if gate_metric is not None and gate_metric not in names:
        raise ConfigError(f"gate_metric={gate_metric!r} is not one of the scorers ({', '.join(names)}): pass one of "
                          "them, or add it to scorers=[...]")
    from workbench.evals.verdicts import check_test

    check_test(gate_test, gate_margin if gate_test != "superiority" else None)  # a bad test fails before training
    return EvalPlan(dataset, scorers, gate_metric, float(min_delta), prompt, eval_params, test=gate_test,
                    margin=gate_margin)


def _start(options: TrainOptions, data: TrainData, evaluation: EvalPlan | None, experiment: str | None,
           wait: bool, progress: bool) -> Adapter | FineTuneJob | None:
    if not isinstance(wait, bool):
        raise ConfigError(f"wait={wait!r} must be True (block, return the Adapter) or False (return a FineTuneJob)")
    job = FineTuneJob(options, data, experiment=experiment, evaluation=evaluation)
    if not wait:
        return job.run_background()
    return job.run_foreground(progress)


def lora(base: str = "local/smollm2", data: Any = None, name: str | None = None, *, r: int = 8, alpha: float = 16,
         dropout: float = 0.05, target_modules: list[str] | None = None, epochs: int = 1, max_steps: int | None = None,
         lr: float = 2e-4, batch_size: int = 4, max_length: int = 256, eval_data: Any = None, scorers: Any = None,
         gate_metric: str | None = None, min_delta: float = 0.0, prompt: Any = None,
         eval_params: dict[str, Any] | None = None, seed: int = 0, experiment: str | None = None, wait: bool = True,
         progress: bool = True, gate_test: str = "superiority", gate_margin: float | None = None) -> Any:
    """LoRA supervised fine-tune of a local model; the loss is on the assistant's answers only.

    data: what workbench.training_data.sft() returns, a DataFrame with `messages` or `input`/`output`, a list of
    such dicts, or a JSONL path. name: the adapter's registered-model name (each run adds a version); call it at once
    as `local/<base>+adapter:<name>`. eval_data: a golden dataset to re-evaluate base and adapter on, then gate
    (gate_metric, default token_f1; min_delta; gate_test="non_inferiority" or "equivalence" with gate_margin, see
    workbench.gate). Returns the Adapter (wait=True) or a FineTuneJob (wait=False).
    """
    options = TrainOptions("sft", check_base(base), check_name(name), r, alpha, dropout, target_modules, epochs,
                           max_steps, lr, batch_size, max_length, seed)
    if data is None:
        raise ConfigError("data=None: pass the training rows, e.g. data=workbench.training_data.sft()")
    rows = sft_rows(data)
    evaluation = _evaluation(eval_data, scorers, gate_metric, min_delta, prompt, eval_params, gate_test,
                             gate_margin)
    return _start(options, rows, evaluation, experiment, wait, progress)


def dpo(base: str = "local/smollm2", data: Any = None, name: str | None = None, *, beta: float = 0.1, r: int = 8,
        alpha: float = 16, dropout: float = 0.05, target_modules: list[str] | None = None, epochs: int = 1,
        max_steps: int | None = None, lr: float = 5e-5, batch_size: int = 2, max_length: int = 256,
        eval_data: Any = None, scorers: Any = None, gate_metric: str | None = None, min_delta: float = 0.0,
        prompt: Any = None, eval_params: dict[str, Any] | None = None, seed: int = 0, experiment: str | None = None,
        wait: bool = True, progress: bool = True, gate_test: str = "superiority",
        gate_margin: float | None = None) -> Any:
    """DPO on preference triples with TRL's DPOTrainer, training a LoRA adapter (the base is the reference).

    data: what workbench.training_data.preferences() returns (prompt, chosen, rejected), or TRL's JSONL. The rest is
    as for lora(): the same child process, progress, MLflow run, registered adapter and re-evaluation.
    """
    options = TrainOptions("dpo", check_base(base), check_name(name), r, alpha, dropout, target_modules, epochs,
                           max_steps, lr, batch_size, max_length, seed, beta)
    if data is None:
        raise ConfigError("data=None: pass preference triples, e.g. data=workbench.training_data.preferences()")
    rows = preference_rows(data)
    evaluation = _evaluation(eval_data, scorers, gate_metric, min_delta, prompt, eval_params, gate_test,
                             gate_margin)
    return _start(options, rows, evaluation, experiment, wait, progress)
