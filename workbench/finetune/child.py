"""The fine-tune's child process: `python -m workbench.finetune.child <spec.json> <pipe fd>`.

It loads its own copy of the base, trains (LoRA SFT with a plain torch loop; DPO with TRL's DPOTrainer on LoRA),
saves the adapter folder only, and reports over the pipe, one JSON object a line:

    {"event": "ready", ...}         the model loaded and the options passed the checks that need it
    {"event": "step", "step": 3, "loss": 1.92, "tokens": 412, "seconds": 0.8}
    {"event": "config_error", "message": "..."}   a bad option found after loading: the parent raises ConfigError
    {"event": "done", "cancelled": false, "steps": 30, "peak_rss_mb": 910.0, ...}

It never touches MLflow or a display: the parent alone does. It runs in its own session, so the kernel's Ctrl-C
reaches only the parent, which asks it to stop with SIGTERM; the child then ends at the next step boundary, still
saving what it learned so far (the parent keeps it as the KILLED run's artifact).
"""

from __future__ import annotations

import json
import logging
import math
import os
import resource
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from workbench.errors import ConfigError, WorkbenchError
from workbench.finetune.sft_data import batches, encode_conversation, encode_rows
from workbench.providers.local.weights import load_base

__all__ = ["main", "default_targets", "check_targets"]

_stop = False


def _on_signal(signum: int, frame: Any) -> None:
    global _stop
    _stop = True


class _Pipe:
    def __init__(self, fd: int) -> None:
        self.handle = os.fdopen(fd, "w", buffering=1, encoding="utf-8")
        self.parent = os.getppid()

    def send(self, event: str, **fields: Any) -> None:
        global _stop
        if os.getppid() != self.parent:  # the parent died (we were re-parented): nobody will read or record this
            _stop = True
        try:
            self.handle.write(json.dumps({"event": event, **fields}) + "\n")
            self.handle.flush()
        except (BrokenPipeError, ValueError):  # the parent went away: stop as if cancelled
            _stop = True


def _linear_names(model: Any) -> set[str]:
    """Last name parts of the modules LoRA can wrap (Linear, and GPT-2's Conv1D)."""
    import torch

    found = set()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D":
            found.add(name.rsplit(".", 1)[-1])
    found.discard("lm_head")  # the output layer: LoRA on it would also need its embeddings saved
    return found


def default_targets(model: Any) -> list[str]:
    """peft's choice for the architecture, else the attention projections that exist."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as mapping

    known = mapping.get(getattr(model.config, "model_type", ""), None)
    if known:
        return sorted(known)
    names = _linear_names(model)
    guess: list[str] = [n for n in ("q_proj", "v_proj", "c_attn", "query", "value", "query_key_value") if n in names]
    return guess or sorted(names)[:2]


def check_targets(model: Any, wanted: list[str] | None) -> list[str]:
    if wanted is None:
        return default_targets(model)
    names = _linear_names(model)
    unknown = [m for m in wanted if m not in names]
    if unknown:
        raise ConfigError(f"target_modules has {unknown[0]!r}, which is not a linear layer of this model; its linear "
                          f"layers are {', '.join(sorted(names))}")
    return list(wanted)


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() and os.environ.get("WORKBENCH_FINETUNE_DEVICE", "") != "cpu" else "cpu"


def _peak_mb() -> dict[str, float]:
    import torch

    peak = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # KiB on Linux
    if torch.cuda.is_available():
        peak["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return peak


def _lora_config(options: dict[str, Any], targets: list[str]) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=options["r"], lora_alpha=options["alpha"], lora_dropout=options["dropout"],
                      target_modules=targets, task_type="CAUSAL_LM")


def _train_sft(loaded: Any, options: dict[str, Any], rows: list[dict[str, Any]], out: Path, pipe: _Pipe,
               device: str) -> dict[str, Any]:
    import torch
    from peft import get_peft_model

    targets = check_targets(loaded.model, options["target_modules"])
    encoded = encode_rows(loaded.tokenizer, rows, options["max_length"])
    torch.manual_seed(options["seed"])  # the LoRA A matrices start random
    model = get_peft_model(loaded.model, _lora_config(options, targets)).to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=options["lr"])
    per_epoch = math.ceil(len(encoded) / options["batch_size"])
    total = options["max_steps"] or per_epoch * options["epochs"]
    pipe.send("ready", steps=total, rows=len(encoded), target_modules=targets, device=device,
              trainable_params=sum(p.numel() for p in trainable),
              total_params=sum(p.numel() for p in model.parameters()),
              train_tokens=sum(e.trained_tokens for e in encoded))
    model.train()
    step, epoch, pad = 0, 0, loaded.tokenizer.pad_token_id
    while step < total and not _stop:
        for batch in batches(encoded, options["batch_size"], options["seed"] + epoch, pad):
            clock = time.perf_counter()
            batch = {k: v.to(device) for k, v in batch.items()}
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            pipe.send("step", step=step, loss=float(loss.detach()), epoch=epoch,
                      tokens=int(batch["attention_mask"].sum()), seconds=time.perf_counter() - clock, t=time.time())
            if step >= total or _stop:
                break
        epoch += 1
    model.save_pretrained(out)
    return {"steps": step, "target_modules": targets}


def _train_dpo(loaded: Any, options: dict[str, Any], rows: list[dict[str, Any]], out: Path, pipe: _Pipe,
               device: str, work: Path) -> dict[str, Any]:
    import datasets
    from transformers import TrainerCallback
    from trl import DPOConfig, DPOTrainer

    targets = check_targets(loaded.model, options["target_modules"])
    for index, row in enumerate(rows):  # TRL would silently truncate: an error is clearer
        for side in ("chosen", "rejected"):
            size = len(encode_conversation(loaded.tokenizer, [*row["prompt"], {"role": "assistant",
                                                                               "content": row[side]}]).input_ids)
            if size > options["max_length"]:
                raise ConfigError(f"data row {index} ({side}) is {size} tokens, longer than max_length="
                                  f"{options['max_length']}: raise max_length or shorten it")
    per_epoch = math.ceil(len(rows) / options["batch_size"])
    total = options["max_steps"] or per_epoch * options["epochs"]
    train = datasets.Dataset.from_list([{"prompt": r["prompt"],
                                         "chosen": [{"role": "assistant", "content": r["chosen"]}],
                                         "rejected": [{"role": "assistant", "content": r["rejected"]}]} for r in rows])
    config = DPOConfig(
        output_dir=str(work / "trainer"), per_device_train_batch_size=options["batch_size"],
        learning_rate=options["lr"], num_train_epochs=options["epochs"], max_steps=options["max_steps"] or -1,
        beta=options["beta"], max_length=options["max_length"], logging_steps=1, save_strategy="no", report_to=[],
        gradient_checkpointing=False, seed=options["seed"], disable_tqdm=True, use_cpu=device == "cpu",
        dataloader_num_workers=0, lr_scheduler_type="constant",
    )
    clock = [time.perf_counter()]

    class Report(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if logs and "loss" in logs:
                extra = {k: float(v) for k, v in logs.items()
                         if k.startswith("rewards/") and isinstance(v, int | float)}
                pipe.send("step", step=int(state.global_step), loss=float(logs["loss"]), seconds=
                          time.perf_counter() - clock[0], extra=extra)
                clock[0] = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if _stop:
                control.should_training_stop = True

    trainer = DPOTrainer(model=loaded.model, args=config, train_dataset=train, processing_class=loaded.tokenizer,
                         peft_config=_lora_config(options, targets), callbacks=[Report()])
    trainable = [p for p in trainer.model.parameters() if p.requires_grad]
    pipe.send("ready", steps=total, rows=len(rows), target_modules=targets, device=device,
              trainable_params=sum(p.numel() for p in trainable),
              total_params=sum(p.numel() for p in trainer.model.parameters()))
    clock[0] = time.perf_counter()
    trainer.train()
    trainer.model.save_pretrained(out)
    return {"steps": int(trainer.state.global_step), "target_modules": targets}


def _quiet() -> None:
    warnings.filterwarnings("ignore")
    for name in ("transformers", "trl", "peft", "accelerate", "datasets"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv: list[str]) -> int:
    spec_path, fd = Path(argv[0]), int(argv[1])
    pipe = _Pipe(fd)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    options, out, work = spec["options"], Path(spec["out"]), spec_path.parent
    _quiet()

    started = time.perf_counter()
    try:
        rows = [json.loads(line) for line in Path(spec["data"]).read_text(encoding="utf-8").splitlines() if line]
        loaded = load_base(options["base"])
        pipe.send("loaded", load_s=time.perf_counter() - started, source=loaded.source, path=loaded.path)
        device = _device()
        train = _train_dpo if options["method"] == "dpo" else _train_sft
        args = (work,) if options["method"] == "dpo" else ()
        summary = train(loaded, options, rows, out, pipe, device, *args)
    except ConfigError as exc:
        pipe.send("config_error", message=str(exc))
        return 2
    except WorkbenchError as exc:  # e.g. the base cannot be loaded
        pipe.send("error", message=str(exc), kind=type(exc).__name__)
        return 1
    (out / "workbench-adapter.json").write_text(json.dumps({
        "base": options["base"], "method": options["method"], "name": options["name"], "steps": summary["steps"],
        "target_modules": summary["target_modules"], "cancelled": _stop}, indent=1))
    pipe.send("done", cancelled=_stop, train_s=time.perf_counter() - started, **summary, **_peak_mb())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
