"""The CTranslate2 engine (providers/local/ct2_engine.py): same tokens as transformers, converted once per user and
weights, safe against races and leftovers, and a fallback that says why when it cannot serve."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from workbench.errors import ConfigError, WorkbenchWarning
from workbench.providers.local import adapters as local_adapters
from workbench.providers.local import ct2_engine
from workbench.providers.local import decoder as local_decoder
from workbench.providers.local import generate as local_generate
from workbench.providers.local import progress as local_progress
from workbench.providers.local import weights as local_weights

ROOT = Path(__file__).resolve().parent.parent
STORY = [{"role": "user", "content": "Write a short story about a dragon who learns to bake bread."}]


def test_the_local_provider_loads_ctranslate2_before_torch():
    # torch makes its libgomp global: a ctranslate2 loaded after it ran on torch's passive-waiting OpenMP runtime
    # at less than half its speed (45 -> 20 tokens/s), so importing the weights module loads ctranslate2 first
    code = ("import sys, workbench.providers.local.weights; "
            "print('ctranslate2' in sys.modules, 'torch' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("OMP_WAIT_POLICY", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"], out.stderr


def test_the_thread_setting_is_checked_and_a_busy_machine_gets_one_thread(monkeypatch):
    monkeypatch.setenv(ct2_engine.THREADS_ENV, "two")
    with pytest.raises(ConfigError, match="WORKBENCH_LOCAL_THREADS='two'.*WORKBENCH_LOCAL_THREADS=2"):
        ct2_engine.threads()
    monkeypatch.setenv(ct2_engine.THREADS_ENV, "3")
    assert ct2_engine.threads() == 3
    monkeypatch.delenv(ct2_engine.THREADS_ENV)
    import torch

    monkeypatch.setattr(os, "getloadavg", lambda: (0.3, 0.3, 0.3))
    assert ct2_engine.threads() == torch.get_num_threads()
    monkeypatch.setattr(os, "getloadavg", lambda: (torch.get_num_threads() + 1.5, 1.0, 1.0))
    assert ct2_engine.threads() == 1


@pytest.mark.parametrize(("variable", "value"), [(local_decoder.ENV, "turbo"), (ct2_engine.THREADS_ENV, "0"),
                                                 (ct2_engine.THREADS_ENV, "two")])
def test_a_bad_backend_setting_is_one_error_before_the_call(monkeypatch, variable, value):
    # checked before the model loads: the user's setting, not a failed generation retried three times with
    # "add a fallback" advice
    import workbench as wb

    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=f"{variable}={value!r}") as caught:
        wb.complete("hi", "local/smollm2", max_tokens=3, cache=False)
    assert "attempt" not in str(caught.value) and "fallback" not in str(caught.value)


def test_the_engine_folder_follows_the_weights(tmp_path):
    source = tmp_path / "model"
    source.mkdir()
    (source / "config.json").write_text("{}")
    (source / "model.safetensors").write_bytes(b"0" * 10)
    first = ct2_engine.engine_folder(tmp_path / "cache", "org/odd name", source)
    assert first == ct2_engine.engine_folder(tmp_path / "cache", "org/odd name", source)
    assert first.parent == tmp_path / "cache" / "ctranslate2" and first.name.startswith("org_odd_name-")
    (source / "model.safetensors").write_bytes(b"1" * 11)  # re-converted or edited weights: a new engine
    assert ct2_engine.engine_folder(tmp_path / "cache", "org/odd name", source) != first


def _loaded():
    return local_adapters.model_for("smollm2")


def _fresh(loaded):
    """The shared model with nothing built yet (its own `extra`), so a test's engine choice stays its own."""
    return dataclasses.replace(loaded, extra={})


@pytest.mark.model
def test_the_engine_gives_transformers_tokens_exactly():
    import torch

    loaded = _loaded()
    engine = local_decoder.decoder_for(loaded)
    assert isinstance(engine, ct2_engine.Ct2Decoder) and engine.bytes_per_token > 500e6  # fp32: 538 MB a token
    inputs = loaded.tokenizer(local_generate.chat_prompt(loaded.tokenizer, STORY), return_tensors="pt",
                              add_special_tokens=False)
    with torch.inference_mode():
        expected = loaded.model.generate(**inputs, max_new_tokens=40, do_sample=False,
                                         pad_token_id=loaded.tokenizer.pad_token_id)
    got = local_decoder.generate_ids(engine, inputs["input_ids"], max_new_tokens=40, eos_ids={2})
    assert torch.equal(got, expected)
    with pytest.raises(ValueError, match="greedy"):
        local_decoder.generate_ids(engine, inputs["input_ids"], max_new_tokens=4, temperature=0.7)


@pytest.mark.model
def test_sampled_calls_keep_the_torch_decoder_and_their_seed():
    loaded = _loaded()
    assert isinstance(local_decoder.decoder_for(loaded, greedy=False), local_decoder.FastDecoder)
    settings = local_generate.GenerationSettings(max_new_tokens=12, temperature=0.9, seed=7)
    first = local_generate.generate(loaded, STORY, settings)
    assert local_generate.generate(loaded, STORY, settings).text == first.text


@pytest.mark.model
def test_an_error_in_the_stopping_check_reaches_the_caller():
    import torch

    engine = local_decoder.decoder_for(_loaded())

    def broken(ids, scores):
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        local_decoder.generate_ids(engine, torch.tensor([[1, 2, 3]]), max_new_tokens=5, stopping_criteria=broken)


@pytest.mark.slow
@pytest.mark.model
def test_the_engine_is_converted_once_and_leftovers_are_cleared(tmp_path, monkeypatch):
    source = local_weights.weights_folder(_loaded())
    assert source is not None
    target = ct2_engine.engine_folder(tmp_path, "smollm2", source)
    target.parent.mkdir(parents=True)
    killed = target.parent / f".{target.name}.tmp-4242-1"  # a conversion killed half way (kill -9)
    (killed / "model.bin").parent.mkdir()
    (killed / "model.bin").write_bytes(b"half")
    older = target.parent / "smollm2-0123456789abcdef"  # the engine of weights since re-converted
    older.mkdir()
    other = target.parent / "smollm2-extra-0123456789abcdef"  # another model's engine: kept
    other.mkdir()
    reports: list[local_progress.ModelProgress] = []
    remove = local_progress.add_listener(reports.append)
    try:
        engine = ct2_engine.load_engine("smollm2", source, tmp_path, 1)
    finally:
        remove()
    assert engine.folder == target and (target / "workbench-engine.json").is_file()
    assert not killed.exists() and not older.exists() and other.exists()
    assert reports[-1].done and reports[-1].message == "ready" and reports[-1].about == "a few seconds"
    assert any("fast engine" in report.message for report in reports)

    def no_conversion(*args):
        raise AssertionError("converted again")

    monkeypatch.setattr(ct2_engine, "_convert", no_conversion)
    again = ct2_engine.load_engine("smollm2", source, tmp_path, 1)
    assert again.folder == target
    # an engine that became unreadable (a disk error) is converted again, once
    monkeypatch.undo()
    (target / "model.bin").write_bytes(b"truncated")
    rebuilt = ct2_engine.load_engine("smollm2", source, tmp_path, 1)
    assert (target / "model.bin").stat().st_size > 500e6 and rebuilt.bytes_per_token > 500e6


@pytest.mark.model
def test_when_the_engine_cannot_serve_the_fp16_decoder_does_and_says_why_once(monkeypatch):
    loaded = _fresh(_loaded())

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ct2_engine, "load_engine", full_disk)
    with pytest.warns(WorkbenchWarning, match="CTranslate2 engine is not used: preparing it failed.*No space left"):
        chosen = local_decoder.decoder_for(loaded)
    assert isinstance(chosen, local_decoder.FastDecoder) and chosen.kind == "fp16"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once per model, not on every call
        assert local_decoder.decoder_for(loaded) is chosen
    answer = local_generate.generate(loaded, STORY, local_generate.GenerationSettings(max_new_tokens=4))
    assert answer.completion_tokens == 4

    missing = _fresh(_loaded())
    monkeypatch.setattr(ct2_engine, "available", lambda: False)
    with pytest.warns(WorkbenchWarning, match="ctranslate2 is not installed"):
        assert isinstance(local_decoder.decoder_for(missing), local_decoder.FastDecoder)


@pytest.mark.model
def test_a_merged_adapter_uses_the_torch_decoder_quietly():
    merged = dataclasses.replace(_loaded(), adapter="tone@1", extra={})  # its weights exist only in memory
    assert local_weights.weights_folder(merged) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(local_decoder.decoder_for(merged), local_decoder.FastDecoder)
