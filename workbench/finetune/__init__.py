"""`workbench.finetune`: LoRA SFT and DPO of a local model in a child process; adapters tracked in MLflow.

    workbench.finetune.lora(base="local/smollm2", data=workbench.training_data.sft(), name="support-v1")
    workbench.finetune.dpo(base="local/smollm2", data=workbench.training_data.preferences(), name="polite-v1")
    workbench.finetune.adapters()          every registered adapter version
    workbench.finetune.Adapter.load(name)  a registered version read back

Each fine-tune is an MLflow run (params, data digest, loss per step, the adapter folder) and a new version of the
registered model `name`; `local/<base>+adapter:<name>[@<version>]` calls it through the gateway at once. Importing
this package loads neither torch nor MLflow.
"""

from __future__ import annotations

from workbench.finetune.adapter import Adapter
from workbench.finetune.api import dpo, lora
from workbench.finetune.job import FineTuneJob
from workbench.finetune.registry import adapters

__all__ = ["lora", "dpo", "Adapter", "FineTuneJob", "adapters"]
