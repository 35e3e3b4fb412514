"""Fine-tune options and training data, checked in the parent before any child process starts.

Every error quotes the bad value and says what would work (peft's dataclass configs are the model). Checks that
need the model itself (an unknown target module, a row longer than max_length in tokens) run in the child, right
after it loads the base, and come back as the same ConfigError before a single training step.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import ConfigError

__all__ = ["TrainOptions", "TrainData", "sft_rows", "preference_rows", "check_name", "check_base", "MAX_ROWS"]

MAX_ROWS = 100_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,99}$")


def check_name(name: object) -> str:
    """The adapter's registered-model name: what `local/<base>+adapter:<name>` refers to."""
    if not isinstance(name, str) or not _NAME.match(name.strip()):
        raise ConfigError(f"name={name!r} must be letters, digits, '.', '_' or '-' (up to 100), e.g. name='support-v1'")
    return name.strip()


def check_base(base: object) -> str:
    """The base model without `local/`: fine-tuning runs on local weights only."""
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(f"base={base!r} must be a local model, e.g. base='local/smollm2'")
    text = base.strip()
    if not text.startswith("local/"):
        raise ConfigError(f"base={base!r} is not a local model: fine-tuning trains weights on this machine, so pass "
                          f"a local/ model, e.g. base='local/smollm2' or base='local/<folder or hf id>'")
    if "+adapter:" in text:
        raise ConfigError(f"base={base!r} already has an adapter: fine-tune the plain base (merge the adapter first "
                          f"with Adapter.merge(path) and pass base='local/<path>')")
    rest = text.removeprefix("local/")
    if not rest:
        raise ConfigError(f"base={base!r} names no model after 'local/': e.g. base='local/smollm2'")
    return rest


def _positive_int(name: str, value: Any, *, allow_none: bool = False, example: str = "") -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        extra = " (or None)" if allow_none else ""
        raise ConfigError(f"{name}={value!r} must be a whole number > 0{extra}, e.g. {name}={example or 1}")


def _number(name: str, value: Any, low: float, high: float, *, low_open: bool, example: str) -> None:
    ok = not isinstance(value, bool) and isinstance(value, int | float) and not math.isnan(value)
    if ok:
        ok = (value > low if low_open else value >= low) and value <= high
    if not ok:
        bound = f"{'>' if low_open else '>='} {low:g} and <= {high:g}"
        raise ConfigError(f"{name}={value!r} must be a number {bound}, e.g. {name}={example}")


@dataclass
class TrainOptions:
    """What the child trains with; one record for LoRA SFT and DPO (beta only matters for DPO)."""

    method: str  # sft | dpo
    base: str  # without local/
    name: str
    r: int = 8
    alpha: float = 16
    dropout: float = 0.05
    target_modules: list[str] | None = None  # None: the attention projections the model has
    epochs: int = 1
    max_steps: int | None = None
    lr: float = 2e-4
    batch_size: int = 4
    max_length: int = 256
    seed: int = 0
    beta: float = 0.1
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _positive_int("r", self.r, example="8")
        _number("alpha", self.alpha, 0, 1e6, low_open=True, example="16")
        _number("dropout", self.dropout, 0, 0.99, low_open=False, example="0.05")
        _positive_int("epochs", self.epochs, example="1")
        _positive_int("max_steps", self.max_steps, allow_none=True, example="30")
        _number("lr", self.lr, 0, 1.0, low_open=True, example="2e-4")
        _positive_int("batch_size", self.batch_size, example="4")
        _positive_int("max_length", self.max_length, example="256")
        if self.max_length < 8:
            raise ConfigError(f"max_length={self.max_length!r} is too short to hold a prompt and an answer: "
                              f"use at least 8 tokens, e.g. max_length=256")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"seed={self.seed!r} must be a whole number, e.g. seed=0")
        _number("beta", self.beta, 0, 100, low_open=True, example="0.1")
        if self.target_modules is not None:
            modules = [self.target_modules] if isinstance(self.target_modules, str) else self.target_modules
            if not isinstance(modules, list | tuple) or not modules or not all(
                    isinstance(m, str) and m.strip() for m in modules):
                raise ConfigError(f"target_modules={self.target_modules!r} must be a list of module names, "
                                  f"e.g. target_modules=['q_proj', 'v_proj'] (or None for the attention projections)")
            self.target_modules = [m.strip() for m in modules]

    def params(self) -> dict[str, Any]:
        """Flat params for MLflow."""
        found = asdict(self)
        found.pop("extra")
        if self.method != "dpo":
            found.pop("beta")
        found["target_modules"] = ",".join(self.target_modules) if self.target_modules else "auto"
        return found


@dataclass
class TrainData:
    """Normalized rows (SFT: {"messages": [...]}; DPO: {"prompt": [...], "chosen": str, "rejected": str})."""

    kind: str  # sft | dpo
    rows: list[dict[str, Any]]
    source: str  # where they came from, for the MLflow input

    @property
    def digest(self) -> str:
        hasher = hashlib.sha256()
        for row in self.rows:
            hasher.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode())
            hasher.update(b"\n")
        return hasher.hexdigest()[:16]

    def write_jsonl(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="\n") as handle:
            for row in self.rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        return path


def _records(data: Any, what: str) -> tuple[list[dict[str, Any]], str]:
    """Plain dict records from a DataFrame, a list of dicts, or a JSONL path."""
    if isinstance(data, str | Path):
        path = Path(data).expanduser()
        if not path.is_file():
            raise ConfigError(f"data={str(data)!r} is not a file: pass a JSONL path, a DataFrame or a list of dicts")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"data={str(data)!r}: byte {exc.object[exc.start]:#x} at offset {exc.start} is not "
                              "UTF-8; save the file as UTF-8 JSONL") from None
        except OSError as exc:
            raise ConfigError(f"data={str(data)!r} cannot be read ({exc.strerror or exc}): pass a readable JSONL "
                              "file") from None
        records = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ConfigError(f"data={str(path)!r} line {number} is not JSON ({exc.msg}): {line[:80]!r}") from None
        return records, str(path.resolve())
    if hasattr(data, "to_dict") and hasattr(data, "columns"):
        return data.to_dict(orient="records"), f"DataFrame ({len(data)} rows)"
    if isinstance(data, list | tuple):
        return list(data), f"list ({len(data)} rows)"
    raise ConfigError(f"data of type {type(data).__name__} is not {what} data: pass what workbench.training_data."
                      f"{'sft' if what == 'SFT' else 'preferences'}() returns, a DataFrame, a list of dicts or a "
                      f"JSONL path")


def _clean_messages(value: Any, where: str) -> list[dict[str, str]]:
    if isinstance(value, str):  # a JSON string from a CSV round trip
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError(f"{where}: messages={value[:60]!r} is not a list of {{'role', 'content'}}") from None
    if not isinstance(value, list | tuple) or not value:
        raise ConfigError(f"{where}: messages={value!r:.80} must be a non-empty list of {{'role', 'content'}}")
    messages = []
    for message in value:
        if not isinstance(message, dict) or "role" not in message or not isinstance(message.get("content"), str):
            raise ConfigError(f"{where}: message {message!r:.80} needs a 'role' and a text 'content'")
        messages.append({"role": str(message["role"]), "content": message["content"]})
    return messages


def _text(value: Any) -> str | None:
    if isinstance(value, list) and value and isinstance(value[-1], dict):  # TRL's [{"role": "assistant", ...}]
        value = value[-1].get("content")
    return value if isinstance(value, str) else None


def sft_rows(data: Any) -> TrainData:
    """Conversations ending in the assistant answer to learn, from messages, input/output or prompt/completion."""
    records, source = _records(data, "SFT")
    rows = []
    for index, record in enumerate(records):
        where = f"data row {index}"
        if not isinstance(record, dict):
            raise ConfigError(f"{where} is {record!r:.80}, not a dict with 'messages' or 'input'/'output'")
        if record.get("messages") is not None and not (isinstance(record["messages"], float)):
            messages = _clean_messages(record["messages"], where)
        else:
            prompt = record.get("input", record.get("prompt"))
            answer = record.get("output", record.get("completion"))
            if not isinstance(prompt, str) or not isinstance(answer, str):
                raise ConfigError(f"{where} has keys {sorted(record)!r}: SFT rows need 'messages', or 'input' and "
                                  f"'output' texts (what workbench.training_data.sft() returns)")
            messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
        if messages[-1]["role"] != "assistant" or not messages[-1]["content"].strip():
            raise ConfigError(f"{where} does not end with a non-empty assistant answer (last message "
                              f"{messages[-1]!r:.80}): the last assistant turn is what the model learns")
        if len(messages) < 2:
            raise ConfigError(f"{where} holds only the answer: add the user message it answers")
        rows.append({"messages": messages})
    _check_count(rows, source)
    return TrainData("sft", rows, source)


def preference_rows(data: Any) -> TrainData:
    """(prompt, chosen, rejected) triples: what workbench.training_data.preferences() returns, or TRL's JSONL."""
    records, source = _records(data, "preference")
    rows = []
    for index, record in enumerate(records):
        where = f"data row {index}"
        if not isinstance(record, dict):
            raise ConfigError(f"{where} is {record!r:.80}, not a dict with 'prompt', 'chosen' and 'rejected'")
        prompt = record.get("prompt_messages")
        if not isinstance(prompt, list | tuple) or not prompt:
            prompt = record.get("prompt")
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else \
            _clean_messages(prompt, where) if prompt is not None else None
        chosen, rejected = _text(record.get("chosen")), _text(record.get("rejected"))
        if messages is None or chosen is None or rejected is None:
            raise ConfigError(f"{where} has keys {sorted(record)!r}: preference rows need 'prompt', 'chosen' and "
                              f"'rejected' (what workbench.training_data.preferences() returns)")
        if not chosen.strip() or not rejected.strip():
            raise ConfigError(f"{where}: chosen={chosen!r:.40} and rejected={rejected!r:.40} must both be non-empty")
        if chosen.strip() == rejected.strip():
            raise ConfigError(f"{where}: chosen and rejected are the same text ({chosen!r:.60}); nothing to prefer")
        rows.append({"prompt": messages, "chosen": chosen, "rejected": rejected})
    _check_count(rows, source)
    return TrainData("dpo", rows, source)


def _check_count(rows: list[dict[str, Any]], source: str) -> None:
    if not rows:
        raise ConfigError(f"data={source!r} is empty: there is nothing to train on (collect signals first, e.g. "
                          f"workbench.feedback(response, stars=5), then workbench.training_data.sft())")
    if len(rows) > MAX_ROWS:
        raise ConfigError(f"data has {len(rows)} rows, more than {MAX_ROWS}: a local CPU fine-tune of that size "
                          f"would take days; sample it down")
