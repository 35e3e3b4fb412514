"""LoRA fine-tune: step time through `workbench.finetune.lora` vs a plain peft + torch loop, in one run.

Both sides train the same LoRA (r=8, alpha=16, dropout 0.05, q_proj/v_proj) on the same 28 rows (the same token ids
and prompt masks), batch size, learning rate, seed and number of steps, each in its own fresh process (the workbench
side in its child process; the plain side in a subprocess of this script), alternating rounds so that load on the
machine hits both alike. Reported per side: median step time (end of one step to the end of the next, as the training
process saw it: batching, forward, backward, optimizer and, for workbench, the progress report over the pipe), the
ratio (target <= 1.1x), peak resident memory of the training process (and GPU memory where there is a GPU), and the
time from the call to the first finished step (workbench: from `lora()` in the caller, MLflow run included; plain:
from starting its process, imports and model load included).

    .venv/bin/python bench/bench_finetune.py [--steps 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

QA = [("What is the capital of France?", "Paris"), ("What color is the sky?", "blue"),
      ("How many legs does a cat have?", "four"), ("What is 2 plus 2?", "4"), ("Name a fruit.", "an apple"),
      ("What do bees make?", "honey"), ("What is the opposite of hot?", "cold"),
      ("Which planet do we live on?", "Earth"), ("What is frozen water called?", "ice"),
      ("How many days are in a week?", "seven"), ("What animal says moo?", "a cow"),
      ("What is the largest ocean?", "the Pacific"), ("What do plants need to grow?", "sunlight and water"),
      ("What is the first letter of the alphabet?", "A"), ("What shape has three sides?", "a triangle"),
      ("What do you use to write?", "a pen"), ("Where do fish live?", "in water"),
      ("What is the color of grass?", "green"), ("How many hours are in a day?", "24"),
      ("What gas do we breathe in?", "oxygen"), ("What is the sun?", "a star"),
      ("What season comes after winter?", "spring"), ("What do you call a baby dog?", "a puppy"),
      ("What is the capital of Japan?", "Tokyo"), ("How many wheels does a bicycle have?", "two"),
      ("What instrument has black and white keys?", "a piano"), ("What is 10 minus 3?", "7"),
      ("Which is bigger, a mouse or an elephant?", "an elephant")]
ROWS = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": f"Ahoy! The answer be {a}, matey."}]}
        for q, a in QA]
SETTINGS = {"r": 8, "alpha": 16, "dropout": 0.05, "lr": 2e-4, "batch_size": 4, "max_length": 256, "seed": 0}


def plain(steps: int) -> dict:
    """The baseline: load, wrap with peft, and a hand-written torch loop. Runs in its own process."""
    started = time.time()
    import torch
    from peft import LoraConfig, get_peft_model

    from workbench.finetune.sft_data import batches, encode_rows
    from workbench.providers.local.weights import load_base

    loaded = load_base("smollm2")
    device = "cuda" if torch.cuda.is_available() and os.environ.get("WORKBENCH_FINETUNE_DEVICE") != "cpu" else "cpu"
    encoded = encode_rows(loaded.tokenizer, ROWS, SETTINGS["max_length"])
    torch.manual_seed(SETTINGS["seed"])
    config = LoraConfig(r=SETTINGS["r"], lora_alpha=SETTINGS["alpha"], lora_dropout=SETTINGS["dropout"],
                        target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    model = get_peft_model(loaded.model, config).to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=SETTINGS["lr"])
    model.train()
    ends, losses, epoch = [], [], 0
    while len(ends) < steps:
        for batch in batches(encoded, SETTINGS["batch_size"], SETTINGS["seed"] + epoch, loaded.tokenizer.pad_token_id):
            batch = {k: v.to(device) for k, v in batch.items()}
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            ends.append(time.time())
            if len(ends) >= steps:
                break
        epoch += 1
    result = {"ends": ends, "losses": losses, "first_step_s": ends[0] - started, "device": device,
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if torch.cuda.is_available():
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def run_plain(steps: int) -> dict:
    started = time.time()
    out = subprocess.run([sys.executable, __file__, "--plain", str(steps)], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["first_step_s"] = result["ends"][0] - started  # from the call, like the workbench side
    return result


def run_workbench(steps: int) -> dict:
    import workbench

    clock = time.perf_counter()
    job = workbench.finetune.lora(data=ROWS, name="bench", max_steps=steps, target_modules=["q_proj", "v_proj"],
                                  wait=False, **SETTINGS)
    job.wait()
    return {"ends": job.step_times, "losses": job.losses, "first_step_s": job.first_step_s,
            "peak_rss_mb": job.info.get("peak_rss_mb"), "peak_gpu_mb": job.info.get("peak_gpu_mb"),
            "device": job.info.get("device"), "total_s": time.perf_counter() - clock}


def _step_s(result: dict) -> list[float]:
    ends = result["ends"]
    return [b - a for a, b in zip(ends, ends[1:], strict=False)][1:]  # the first gap still warms up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--plain", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        print(json.dumps(plain(args.plain)))
        return
    os.environ["WORKBENCH_HOME"] = tempfile.mkdtemp(prefix="wb-bench-finetune-")
    sides = {"workbench.finetune.lora": run_workbench, "plain peft + torch": run_plain}
    results: dict[str, list[dict]] = {name: [] for name in sides}
    order = list(sides)
    for round_index in range(args.rounds):
        for name in order[round_index % 2:] + order[: round_index % 2]:  # alternate which side goes first
            results[name].append(sides[name](args.steps))
    import torch

    print(f"LoRA r=8 q_proj/v_proj on SmolLM2-135M, {len(ROWS)} rows, batch {SETTINGS['batch_size']}, "
          f"{args.steps} steps x {args.rounds} rounds per side, device {results[order[0]][0]['device']}, "
          f"torch threads {torch.get_num_threads()}")
    medians = {}
    for name, runs in results.items():
        steps = [s for run in runs for s in _step_s(run)]
        medians[name] = statistics.median(steps)
        first = statistics.median(run["first_step_s"] for run in runs)
        peak = max(run["peak_rss_mb"] or 0 for run in runs)
        gpu = [run.get("peak_gpu_mb") for run in runs if run.get("peak_gpu_mb")]
        losses = runs[0]["losses"]
        print(f"{name:<26} step {medians[name] * 1000:7.0f} ms (median)   peak RSS {peak:7.0f} MB"
              + (f"   peak GPU {max(gpu):6.0f} MB" if gpu else "")
              + f"   call -> first step {first:5.1f} s   loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    ratio = medians["workbench.finetune.lora"] / medians["plain peft + torch"]
    print(f"step time ratio workbench / plain: {ratio:.3f}x (target <= 1.1x)")


if __name__ == "__main__":
    main()
