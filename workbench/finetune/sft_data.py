"""SFT rows as token ids with the loss on the assistant's answer only, and padded batches of them.

TRL's assistant-only loss needs `{% generation %}` markers in the chat template, which SmolLM2's template lacks, so
the prompt is masked here: the template renders the conversation without its last answer (with the generation prompt,
exactly what the model sees at inference), and every token of that prefix gets the label -100. What follows it (the
answer and the template's end-of-turn marker) is what the model learns to write, end-of-turn included, so a tuned
model stops where it should. Used by the child process and by bench/bench_finetune.py's plain loop (same data).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from workbench.errors import ConfigError
from workbench.providers.local.generate import chat_prompt  # the plain-turns format the provider uses

__all__ = ["Encoded", "encode_conversation", "encode_rows", "batches", "IGNORE"]

IGNORE = -100  # the label torch's cross-entropy skips


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]

    @property
    def trained_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


def _split(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[str, str]:
    """(prompt text up to the answer, answer text with the end-of-turn marker)."""
    answer = messages[-1]["content"]
    if getattr(tokenizer, "chat_template", None):
        prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(messages, tokenize=False)
        if full.startswith(prompt):
            return prompt, full[len(prompt):]
        return prompt, answer + (tokenizer.eos_token or "")  # a template that rewrites earlier turns
    return chat_prompt(tokenizer, messages[:-1]), " " + answer + (tokenizer.eos_token or "")


def encode_conversation(tokenizer: Any, messages: list[dict[str, str]]) -> Encoded:
    prompt, completion = _split(tokenizer, messages)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    return Encoded(prompt_ids + answer_ids, [IGNORE] * len(prompt_ids) + answer_ids)


def encode_rows(tokenizer: Any, rows: list[dict[str, Any]], max_length: int) -> list[Encoded]:
    """Every row encoded; a row longer than max_length is an error (cutting it would cut the answer it teaches)."""
    encoded = []
    for index, row in enumerate(rows):
        item = encode_conversation(tokenizer, row["messages"])
        if len(item.input_ids) > max_length:
            raise ConfigError(f"data row {index} is {len(item.input_ids)} tokens, longer than max_length={max_length} "
                              f"(it starts {row['messages'][-2]['content'][:50]!r}): raise max_length or shorten it")
        encoded.append(item)
    return encoded


def batches(items: list[Encoded], batch_size: int, seed: int, pad_id: int) -> Iterator[dict[str, Any]]:
    """Shuffled batches (one pass), right-padded to the longest row of each batch."""
    import torch

    order = list(range(len(items)))
    random.Random(seed).shuffle(order)  # noqa: S311 - a seeded batch order, not a secret
    for start in range(0, len(order), batch_size):
        chunk = [items[i] for i in order[start:start + batch_size]]
        width = max(len(item.input_ids) for item in chunk)
        ids = [item.input_ids + [pad_id] * (width - len(item.input_ids)) for item in chunk]
        labels = [item.labels + [IGNORE] * (width - len(item.labels)) for item in chunk]
        mask = [[1] * len(item.input_ids) + [0] * (width - len(item.input_ids)) for item in chunk]
        yield {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask), "labels": torch.tensor(labels)}
