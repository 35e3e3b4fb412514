"""Fine-tuning: option and data checks (no model), then real LoRA and DPO runs of the bundled SmolLM2 (slow).

The real runs train in a child process on the CPU for a few dozen steps at most. The style taught is easy to detect:
every answer starts with "Ahoy!" and ends with "matey." The base model never answers like that.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

import workbench as wb
from workbench.errors import ConfigError, FineTuneError
from workbench.finetune import options

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
ROWS = [{"input": q, "output": f"Ahoy! The answer be {a}, matey."} for q, a in QA]
HELD_OUT = ["What is the color of snow?", "Name a big city.", "What do cats drink?"]


def _client():
    from workbench.finetune.registry import client

    return client()


# --- checks before any child process -------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"r": 0}, "r=0"), ({"r": -2}, "r=-2"), ({"alpha": 0}, "alpha=0"), ({"dropout": 1.5}, "dropout=1.5"),
    ({"lr": 0}, "lr=0"), ({"batch_size": 0}, "batch_size=0"), ({"epochs": 2.5}, "epochs=2.5"),
    ({"max_steps": -1}, "max_steps=-1"), ({"max_length": 4}, "max_length=4"), ({"target_modules": []}, "[]"),
    ({"name": "bad name"}, "'bad name'"), ({"base": "openai/gpt-4o-mini"}, "'openai/gpt-4o-mini'"),
    ({"base": "local/smollm2+adapter:x"}, "already has an adapter"), ({"data": []}, "is empty"),
    ({"data": [{"input": "hi"}]}, "'input'"), ({"data": 42}, "int"), ({"wait": "yes"}, "wait='yes'"),
    ({"data": [{"messages": [{"role": "user", "content": "hi"}]}]}, "assistant answer"),
    ({"eval_data": "no-such-golden"}, "no-such-golden"), ({"scorers": ["exact_match"]}, "eval_data"),
    ({"eval_data": [{"input": "q", "expected": "a"}], "scorers": ["nope"]}, "unknown scorer 'nope'"),
    ({"eval_data": [{"input": "q", "expected": "a"}], "gate_metric": "nope"}, "gate_metric='nope'"),
    ({"eval_data": [{"input": "q", "expected": "a"}], "gate_test": "equivalence"}, "needs margin > 0"),
    ({"eval_data": [{"input": "q", "expected": "a"}], "gate_test": "better"}, "test='better'"),
])
def test_bad_options_quote_the_value(kwargs, needle):
    call = {"data": ROWS, "name": "style", **kwargs}
    with pytest.raises((ConfigError, wb.WorkbenchError)) as caught:
        wb.finetune.lora(**call)
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_a_jsonl_that_is_not_utf8_is_one_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(ConfigError, match="byte 0xff at offset 0 is not UTF-8") as caught:
        wb.finetune.lora(data=str(path), name="style")
    assert "\n" not in str(caught.value)


def test_dpo_rows_are_checked():
    with pytest.raises(ConfigError, match="same text"):
        wb.finetune.dpo(data=[{"prompt": "hi", "chosen": "Hello!", "rejected": "Hello!"}], name="p")
    with pytest.raises(ConfigError, match="beta=0"):
        wb.finetune.dpo(data=[{"prompt": "hi", "chosen": "Hello!", "rejected": "Go away."}], name="p", beta=0)


def test_training_data_shapes_are_all_accepted(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"input": ["hi"], "output": ["Ahoy!"],
                          "messages": [[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Ahoy!"}]]})
    expected = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Ahoy!"}]}]
    assert options.sft_rows(frame).rows == expected
    assert options.sft_rows([{"prompt": "hi", "completion": "Ahoy!"}]).rows == expected
    path = tmp_path / "sft.jsonl"
    options.TrainData("sft", expected, "x").write_jsonl(path)
    data = options.sft_rows(path)
    assert data.rows == expected and data.digest == options.sft_rows(frame).digest and len(data.digest) == 16
    prefs = pd.DataFrame({"prompt": ["hi"], "chosen": ["Hello!"], "rejected": ["Go away."],
                          "prompt_messages": [[{"role": "user", "content": "hi"}]]})
    assert options.preference_rows(prefs).rows == [{"prompt": [{"role": "user", "content": "hi"}],
                                                    "chosen": "Hello!", "rejected": "Go away."}]


def test_loss_is_on_the_answer_only():
    from transformers import AutoTokenizer

    from workbench.finetune.sft_data import IGNORE, encode_conversation
    from workbench.providers.local.weights import load_base, locate

    location = locate("smollm2")
    folder = location.where if location.kind == "cache" else load_base("smollm2").path
    tokenizer = AutoTokenizer.from_pretrained(folder)
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Ahoy there"}]
    encoded = encode_conversation(tokenizer, messages)
    learned = tokenizer.decode([t for t, label in zip(encoded.input_ids, encoded.labels, strict=True)
                                if label != IGNORE])
    assert learned.startswith("Ahoy there") and "<|im_end|>" in learned and "hi" not in learned
    assert encoded.labels[0] == IGNORE


# --- real training (slow) --------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.model
def test_lora_teaches_a_style_and_the_adapter_is_tracked_callable_and_gated(tmp_path):
    golden = wb.golden("pirate-qa")
    for question in HELD_OUT:
        golden.add(question, "Ahoy!")
    ahoy = wb.scorers.regex(r"^\s*Ahoy", name="ahoy")
    adapter = wb.finetune.lora(data=ROWS, name="pirate", max_steps=16, lr=1e-3, batch_size=4, eval_data=golden,
                               scorers=[ahoy], eval_params={"max_tokens": 12})
    # the loss falls
    assert len(adapter.losses) == 16
    first, last = adapter.losses[0], sum(adapter.losses[-3:]) / 3
    print(f"loss {first:.3f} -> {last:.3f} (mean of the last 3 steps)")
    assert last < 0.5 * first
    # the style shows on a held-out prompt with the adapter, not without
    tuned = wb.complete("What do cats drink?", adapter.model, max_tokens=16)
    plain = wb.complete("What do cats drink?", "local/smollm2", max_tokens=16)
    print(f"adapter: {tuned.text!r}\nbase:    {plain.text!r}")
    assert tuned.text.startswith("Ahoy") and not plain.text.startswith("Ahoy")
    # latest version by name, and adapters share the one base
    assert wb.complete("Name a big city.", "local/smollm2+adapter:pirate", max_tokens=8).text.startswith("Ahoy")
    from workbench.providers.local.adapters import model_for

    assert model_for("smollm2+adapter:pirate@1").extra["base"] is model_for("smollm2")
    # re-evaluation and gate: base and adapter runs linked from the fine-tune's run
    assert adapter.gate is not None and adapter.gate.passed, adapter.gate
    assert adapter.adapter_eval.mean("ahoy") == 1.0 and adapter.base_eval.mean("ahoy") == 0.0
    client = _client()
    run = client.get_run(adapter.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["r"] == "8" and run.data.params["base"] == "local/smollm2"
    assert run.data.params["data_digest"] == options.sft_rows(ROWS).digest
    assert [m.step for m in client.get_metric_history(adapter.run_id, "loss")] == list(range(1, 17))
    assert run.data.tags["workbench.eval.adapter_run"] == adapter.adapter_eval.run_id
    assert run.data.tags["workbench.eval.base_run"] == adapter.base_eval.run_id
    assert run.data.tags["workbench.gate"].startswith("PASS")
    assert client.get_run(adapter.adapter_eval.run_id).data.tags["mlflow.parentRunId"] == adapter.run_id
    inputs = run.inputs.dataset_inputs
    assert inputs and inputs[0].dataset.digest == options.sft_rows(ROWS).digest
    files = {f.path for f in client.list_artifacts(adapter.run_id, "adapter")}
    assert "adapter/adapter_model.safetensors" in files and "adapter/model.safetensors" not in files
    size = sum(f.file_size or 0 for f in client.list_artifacts(adapter.run_id, "adapter"))
    assert size < 5_000_000  # adapter weights only: the base is ~540 MB
    version = client.get_model_version("pirate", "1")
    assert version.run_id == adapter.run_id and version.tags["workbench.model"] == adapter.model
    # merged into plain weights, usable as local/<path>
    merged = adapter.merge(tmp_path / "pirate-merged")
    assert wb.complete("What do cats drink?", f"local/{merged}", max_tokens=16).text == tuned.text


@pytest.mark.slow
@pytest.mark.model
def test_ctrl_c_cancels_the_child_and_the_run_ends_killed():
    def interrupt_after_first_step() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if _jobs and _jobs[0].steps:
                os.kill(os.getpid(), signal.SIGINT)  # what Jupyter's interrupt does to the kernel
                return
            time.sleep(0.05)

    _jobs: list = []
    from workbench.finetune import job as job_module

    original = job_module.FineTuneJob.run_foreground

    def spy(self, progress=True):
        _jobs.append(self)
        return original(self, progress)

    job_module.FineTuneJob.run_foreground = spy
    try:
        threading.Thread(target=interrupt_after_first_step, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            wb.finetune.lora(data=ROWS, name="stopped", max_steps=200, batch_size=2)
    finally:
        job_module.FineTuneJob.run_foreground = original
    job = _jobs[0]
    assert job.status == "cancelled" and job._process.returncode == 0  # it stopped itself, cleanly
    assert job.info.get("cancelled") is True and 1 <= len(job.steps) < 200
    client = _client()
    assert client.get_run(job.run_id).info.status == "KILLED"
    assert client.get_run(job.run_id).data.tags.get("workbench.cancelled") == "true"
    assert any(f.path == "adapter/adapter_model.safetensors" for f in client.list_artifacts(job.run_id, "adapter"))
    assert not client.search_model_versions("name='stopped'")  # a cancelled fine-tune registers nothing


@pytest.mark.slow
@pytest.mark.model
def test_background_job_and_a_killed_child():
    job = wb.finetune.lora(data=ROWS, name="crash", max_steps=200, batch_size=2, wait=False)
    assert isinstance(job, wb.FineTuneJob) and job.status in {"starting", "loading", "training"}
    deadline = time.monotonic() + 120
    while not job.steps and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job.status == "training" and "crash" in repr(job)
    os.killpg(job._process.pid, signal.SIGKILL)  # what the OOM killer does
    with pytest.raises(FineTuneError, match="killed by signal 9"):
        job.wait(timeout=60)
    assert job.status == "failed"
    assert _client().get_run(job.run_id).info.status == "FAILED"


@pytest.mark.slow
@pytest.mark.model
def test_options_the_child_checks_against_the_model():
    with pytest.raises(ConfigError, match="target_modules has 'qq_proj'.*q_proj"):
        wb.finetune.lora(data=ROWS, name="bad-target", target_modules=["q_proj", "qq_proj"], max_steps=1)
    with pytest.raises(ConfigError, match=r"data row 0 is \d+ tokens, longer than max_length=16"):
        wb.finetune.lora(data=ROWS, name="too-long", max_length=16, max_steps=1, progress=False)
    assert not _client().search_model_versions("name='too-long'")


@pytest.mark.slow
@pytest.mark.model
def test_dpo_trains_a_registered_adapter():
    prefs = [{"prompt": q, "chosen": f"Thank you for asking! It is {a}.", "rejected": "Whatever. Look it up."}
             for q, a in QA[:6]]
    adapter = wb.finetune.dpo(data=prefs, name="polite", max_steps=4, lr=1e-4, batch_size=2, wait=False).wait()
    assert adapter.method == "dpo" and adapter.version == "1" and len(adapter.losses) == 4
    assert adapter.losses[0] == pytest.approx(0.6931, abs=0.01)  # DPO starts at log 2: the adapter equals the base
    run = _client().get_run(adapter.run_id)
    assert run.info.status == "FINISHED" and run.data.params["beta"] == "0.1"
    assert run.data.params["method_impl"] == "trl.DPOTrainer"
    assert wb.complete("What is 2 plus 2?", adapter.model, max_tokens=6).text.strip()
    assert Path(adapter.path, "adapter_config.json").is_file()


def test_finetune_magic_shows_bad_options_as_one_line(ipython_shell):
    from IPython.utils.capture import capture_output

    shell = ipython_shell
    shell.run_line_magic("load_ext", "workbench")
    try:
        shell.user_ns["rows"] = ROWS
        for line, needle in (("lora rows --name style -r 0", "r=0"), ("lora missing --name style", "'missing'"),
                             ("lora rows", "--name"), ("sft rows --name style", "lora"),
                             ("lora rows --name style --beta 0.2", "--beta is a DPO option")):
            with capture_output() as captured:
                result = shell.run_cell(f"%finetune {line}")
            assert result.error_in_exec is None
            shown = "".join(o.data.get("text/plain", "") for o in captured.outputs)
            assert needle in shown and "Traceback" not in captured.stdout + captured.stderr, (line, shown)
    finally:
        shell.run_line_magic("unload_ext", "workbench")
