"""The fast local backend (providers/local/decoder.py): same answers as transformers, and used where it should be.

The fixture `fixtures/local_smollm2_answers.json` holds the greedy answers of `local/smollm2` to the course
notebooks' prompts, recorded with transformers' generate before the fast backend existed
(`fixtures/record_local_answers.py`). The quality test compares today's answers to them word by word: the int8
backend (activations rounded to 7 bits) fails it (mean token F1 about 0.3); the default CTranslate2 engine (fp32)
and the fp16 torch decoder match.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from pathlib import Path

import pytest

import workbench as wb
from workbench.errors import ConfigError
from workbench.providers.local import adapters as local_adapters
from workbench.providers.local import decoder as local_decoder
from workbench.providers.local import generate as local_generate
from workbench.providers.local import logprobs as local_logprobs

MODEL = "local/smollm2"
FIXTURE = Path(__file__).parent / "fixtures" / "local_smollm2_answers.json"


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def token_f1(answer: str, expected: str) -> float:
    got, want = Counter(_words(answer)), Counter(_words(expected))
    if not got or not want:
        return float(got == want)
    common = sum((got & want).values())
    if common == 0:
        return 0.0
    precision, recall = common / sum(got.values()), common / sum(want.values())
    return 2 * precision * recall / (precision + recall)


def test_backend_choice_is_checked(monkeypatch):
    monkeypatch.setenv(local_decoder.ENV, "turbo")
    with pytest.raises(ConfigError, match="WORKBENCH_LOCAL_BACKEND='turbo'.*ctranslate2, fp16"):
        local_decoder.backend_name()
    monkeypatch.delenv(local_decoder.ENV)
    assert local_decoder.backend_name() == "ctranslate2"


@pytest.mark.slow
@pytest.mark.model
def test_greedy_answers_to_the_course_prompts_match_the_recorded_ones():
    rows = json.loads(FIXTURE.read_text())
    scores = []
    for row in rows:
        answer = wb.complete(row["prompt"], MODEL, max_tokens=row["max_tokens"], temperature=0, cache=False).text
        scores.append(token_f1(answer, row["answer"]))
    assert statistics.mean(scores) >= 0.9 and min(scores) >= 0.5, [round(s, 2) for s in scores]


@pytest.mark.slow
@pytest.mark.model
def test_the_bundled_model_uses_the_fast_backends():
    loaded = local_adapters.model_for("smollm2")
    assert local_decoder.decoder_for(loaded).kind == "ctranslate2"  # greedy calls
    decoder = local_decoder.decoder_for(loaded, greedy=False)  # sampled calls: torch's seeded generator
    assert decoder is not None and decoder.kind == "fp16"
    assert decoder.bytes_per_token < 300e6  # fp16: half of the 538 MB an fp32 token reads


@pytest.mark.slow
@pytest.mark.model
def test_fp32_decoder_reproduces_transformers_generate_token_for_token():
    import torch

    loaded = local_adapters.model_for("smollm2")
    decoder = local_decoder.FastDecoder(loaded.model, "fp32")
    messages = [{"role": "user", "content": "Write a short story about a dragon who learns to bake bread."}]
    inputs = loaded.tokenizer(local_generate.chat_prompt(loaded.tokenizer, messages), return_tensors="pt",
                              add_special_tokens=False)
    with torch.inference_mode():
        expected = loaded.model.generate(**inputs, max_new_tokens=40, do_sample=False,
                                         pad_token_id=loaded.tokenizer.pad_token_id)
    got = local_decoder.generate_ids(decoder, inputs["input_ids"], max_new_tokens=40, eos_ids={2})
    assert torch.equal(got, expected)
    # a second prompt on the same decoder starts afresh (the KV cache of the first is not reused)
    again = local_decoder.generate_ids(decoder, inputs["input_ids"], max_new_tokens=40, eos_ids={2})
    assert torch.equal(again, expected)


@pytest.mark.slow
@pytest.mark.model
def test_transformers_fallback_gives_the_same_answer(monkeypatch):
    prompt = "What is the capital of France? Answer with one word."
    fast = wb.complete(prompt, MODEL, max_tokens=12, cache=False)
    monkeypatch.setenv(local_decoder.ENV, "transformers")
    assert local_decoder.decoder_for(local_adapters.model_for("smollm2")) is None
    slow = wb.complete(prompt, MODEL, max_tokens=12, cache=False)
    assert fast.text == slow.text and fast.completion_tokens == slow.completion_tokens


@pytest.mark.slow
@pytest.mark.model
def test_the_kv_cache_grows_past_its_first_size_without_changing_the_logits():
    import torch

    decoder = local_decoder.FastDecoder(local_adapters.model_for("smollm2").model, "fp32")
    ids = torch.arange(1000, 1000 + 262)  # any tokens: the cache starts at 256 positions
    with torch.inference_mode():
        decoder.prefill(ids[:250])
        for token in ids[250:-1].tolist():  # crosses position 256: the cache reallocates and copies
            stepped = decoder.step(token)
        whole = decoder.prefill(ids[:-1])  # the same sequence in one go (a prompt chunk with a causal mask)
    assert decoder.max_len >= 512
    assert torch.allclose(stepped, whole, atol=1e-3), (stepped - whole).abs().max()


@pytest.mark.slow
@pytest.mark.model
def test_logprobs_come_from_the_decoder_and_match_the_plain_answer():
    # issue 14's logprobs ride on the fast path: the decoder hands back each step's logits, so a judge's logprobs
    # call picks the same tokens as the plain greedy call, and the numbers agree with transformers' fp32 logits
    import torch

    loaded = local_adapters.model_for("smollm2")
    messages = [{"role": "user", "content": "What is the capital of France? Answer with one word."}]
    settings = local_generate.GenerationSettings(max_new_tokens=6)
    assert local_decoder.decoder_for(loaded) is not None
    plain = local_generate.generate(loaded, messages, settings)
    answer, tokens = local_logprobs.generate_with_logprobs(loaded, messages, settings, 3)
    assert answer.text == plain.text and answer.completion_tokens == plain.completion_tokens
    content = tokens["content"]
    assert "".join(entry["token"] for entry in content) == plain.text
    assert all(entry["top_logprobs"][0]["token"] == entry["token"] for entry in content)  # greedy: the top pick
    inputs = loaded.tokenizer(local_generate.chat_prompt(loaded.tokenizer, messages), return_tensors="pt",
                              add_special_tokens=False)
    with torch.inference_mode():
        reference = loaded.model.generate(**inputs, max_new_tokens=1, do_sample=False, output_logits=True,
                                          return_dict_in_generate=True, pad_token_id=loaded.tokenizer.pad_token_id)
    first = float(torch.log_softmax(reference.logits[0][0].float(), dim=-1).max())
    assert abs(content[0]["logprob"] - first) < 0.05, (content[0]["logprob"], first)
