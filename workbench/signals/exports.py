"""`workbench.training_data`: signals turned into data TRL trains on.

    sft(min_stars=4, path=None)   -> DataFrame(input, output, messages): well-rated answers and human corrections
    preferences(path=None)        -> DataFrame(prompt, chosen, rejected): corrections (edit beats original),
                                     winner picks, and thumbs-up vs thumbs-down answers to the same input

With `path`, each also writes JSONL in TRL's conversational format, every row the same shape:
`{"messages": [...]}` for SFTTrainer; `{"prompt": [...], "chosen": [...], "rejected": [...]}` for DPOTrainer.
Duplicates are removed. The latest signal of a kind on a trace wins (a changed mind counts once).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import ConfigError, WorkbenchError
from workbench.scrub import scrub_value
from workbench.signals.journal import SignalRow, journal

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["sft", "preferences"]


def _prompt_text(messages: list[dict[str, Any]]) -> str:
    users = [m for m in messages if m.get("role") == "user"]
    return str((users[-1] if users else messages[-1]).get("content") or "") if messages else ""


def _latest() -> dict[str, dict[str, SignalRow]]:
    """trace id -> kind -> the latest signal of that kind."""
    found: dict[str, dict[str, SignalRow]] = {}
    for row in journal().rows():
        found.setdefault(row.trace_id, {})[row.kind] = row
    return found


def _write(path: str | Path, records: list[dict[str, Any]]) -> Path:
    if not isinstance(path, str | Path) or not str(path).strip():
        raise ConfigError(f"path={path!r:.80} is not a file path: pass e.g. path='sft.jsonl'")
    target = Path(path).expanduser()
    tmp = target.with_name(target.name + ".tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w", encoding="utf-8", newline="\n") as handle:
            for record in records:
                # scrubbed again here: a journal written before scrubbing existed may hold raw keys
                handle.write(json.dumps(scrub_value(record), ensure_ascii=False) + "\n")
        tmp.replace(target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise WorkbenchError(f"cannot write {target}: {exc.strerror or exc}; pass a file path in a writable "
                             "folder, e.g. path='sft.jsonl'") from None
    return target


def sft(min_stars: int = 4, path: str | Path | None = None) -> pd.DataFrame:
    """Supervised pairs: answers with >= min_stars (or a thumbs up and no low stars), and every correction
    (the human's text replaces the model's answer)."""
    import pandas as pd

    if not isinstance(min_stars, int) or not 1 <= min_stars <= 5:
        raise ConfigError(f"min_stars={min_stars!r} must be a whole number from 1 to 5")
    rows, seen = [], set()
    for signals in _latest().values():
        any_row = next(iter(signals.values()))
        messages = any_row.messages  # what was sent; the answer is added below
        if "correction" in signals:
            answer = str(signals["correction"].value)
        else:
            stars = signals.get("stars")
            thumbs = signals.get("thumbs")
            good = (stars is not None and stars.value >= min_stars) or (
                stars is None and thumbs is not None and thumbs.value is True)
            if not good or not any_row.output:
                continue
            answer = any_row.output
        conversation = [*messages, {"role": "assistant", "content": answer}]
        key = json.dumps(conversation, sort_keys=True, ensure_ascii=False)
        if key in seen:
            continue
        seen.add(key)
        rows.append({"input": _prompt_text(messages), "output": answer, "messages": conversation})
    frame = pd.DataFrame(rows, columns=["input", "output", "messages"])
    if path is not None:
        _write(path, [{"messages": m} for m in frame["messages"]])
    return frame


def preferences(path: str | Path | None = None) -> pd.DataFrame:
    """Preference triples: (prompt, chosen, rejected) from corrections, winner picks and thumbs."""
    import pandas as pd

    triples: list[tuple[list[dict[str, Any]], str, str]] = []
    by_prompt: dict[str, dict[str, list[tuple[list[dict[str, Any]], str]]]] = {}
    for signals in _latest().values():
        any_row = next(iter(signals.values()))
        messages, output = any_row.messages, any_row.output
        if "correction" in signals and output:
            triples.append((messages, str(signals["correction"].value), output))
        win = signals.get("preferred")
        if win is not None and win.value is True and output and win.other_output:
            triples.append((messages, output, win.other_output))
        thumbs = signals.get("thumbs")
        if thumbs is not None and output:
            key = json.dumps(messages, sort_keys=True, ensure_ascii=False)
            side = "up" if thumbs.value else "down"
            by_prompt.setdefault(key, {"up": [], "down": []})[side].append((messages, output))
    for sides in by_prompt.values():  # every liked answer beats every disliked one to the same prompt
        for messages, good in sides["up"]:
            for _, bad in sides["down"]:
                triples.append((messages, good, bad))
    rows, seen = [], set()
    for messages, chosen, rejected in triples:
        if chosen.strip() == rejected.strip():
            continue
        identity = (json.dumps(messages, sort_keys=True, ensure_ascii=False), chosen, rejected)
        if identity in seen:
            continue
        seen.add(identity)
        rows.append({"prompt": _prompt_text(messages), "chosen": chosen, "rejected": rejected,
                     "prompt_messages": messages})
    frame = pd.DataFrame(rows, columns=["prompt", "chosen", "rejected", "prompt_messages"])
    if path is not None:
        _write(path, [{"prompt": r["prompt_messages"], "chosen": [{"role": "assistant", "content": r["chosen"]}],
                       "rejected": [{"role": "assistant", "content": r["rejected"]}]} for r in rows])
    return frame
