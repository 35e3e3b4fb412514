"""The `%%llm` flags line parsed into a typed record. Any bad value is a ConfigError that names it."""

from __future__ import annotations

import argparse
import difflib
import keyword
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import ConfigError
from workbench.notebook.parsing import MagicParser, split_words

__all__ = ["CellOptions", "FORMATS", "parse_cell_line", "parse_key_value", "flags_help", "option_strings"]

FORMATS = ("markdown", "text", "json", "code", "html", "math")


@dataclass
class CellOptions:
    """What the flags of one `%%llm` cell ask for."""

    models: list[str] = field(default_factory=list)  # empty: the default model
    fallbacks: list[str] = field(default_factory=list)
    system: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    format: str = "markdown"
    out: str | None = None
    cache: bool = True
    stream: bool = False
    chat: str | None = None
    trace: bool = False
    signals: bool = True
    prompt: str | None = None

    def params(self) -> dict[str, Any]:
        """The answer-changing parameters for complete(); unset ones are left out so defaults apply."""
        values = {"temperature": self.temperature, "max_tokens": self.max_tokens, "seed": self.seed}
        return {name: value for name, value in values.items() if value is not None}


def _number(flag: str, example: str, low: float | None = None, high: float | None = None) -> Callable[[str], float]:
    def convert(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not a number, e.g. {flag} {example}") from None
        if value != value or (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{raw!r} is out of range {low:g}..{high:g}, e.g. {flag} {example}")
        return value

    return convert


def _whole(flag: str, example: str, minimum: int | None = None) -> Callable[[str], int]:
    def convert(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number, e.g. {flag} {example}") from None
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"{raw!r} must be >= {minimum}, e.g. {flag} {example}")
        return value

    return convert


def _identifier(flag: str) -> Callable[[str], str]:
    def convert(raw: str) -> str:
        if not raw.isidentifier() or keyword.iskeyword(raw):
            raise argparse.ArgumentTypeError(f"{raw!r} is not a Python variable name, e.g. {flag} answer")
        return raw

    return convert


def _build_parser() -> MagicParser:
    parser = MagicParser("%%llm", "see %%llm? for every flag",
                         description="Send the cell body (after {name} interpolation) to a model through the gateway.")
    add = parser.add_argument
    add("-m", "--model", action="append", dest="models", default=[], metavar="MODEL",
        help="model, alias or route; repeat it to see several models side by side (default: the default model)")
    add("--fallback", action="append", dest="fallbacks", default=[], metavar="MODEL",
        help="model to try when the model fails; repeatable, tried in order")
    add("-s", "--system", metavar="TEXT", help="system prompt (quote it: -s \"You are terse.\")")
    add("-t", "--tag", action="append", dest="tags", default=[], metavar="KEY=VALUE",
        help="tag the call for spend reports and budgets; repeatable, e.g. -t project=support")
    add("--temperature", type=_number("--temperature", "0.2", 0, 2), metavar="T", help="sampling temperature, 0 to 2")
    add("--max-tokens", type=_whole("--max-tokens", "256", 1), metavar="N", help="most tokens in the answer")
    add("--seed", type=_whole("--seed", "0"), metavar="N", help="sampling seed, for repeatable answers")
    add("-f", "--format", choices=FORMATS, default="markdown", metavar="FORMAT",
        help="markdown (default; raw HTML shown as text), text, json (parsed into _llm_json), "
             "code (fence stripped, code put in a new cell below), "
             "html (renders the model's HTML: trusted models only), "
             "math (markdown whose $...$ is typeset as maths; otherwise every $ is shown as written)")
    add("-o", "--out", type=_identifier("-o"), metavar="NAME", help="also store the Response in the variable NAME")
    add("--no-cache", action="store_false", dest="cache", help="ask the model even when a cached answer exists")
    add("--stream", action="store_true", help="show the answer as it is written")
    add("--chat", type=_identifier("--chat"), metavar="NAME",
        help="continue the named conversation: earlier turns of NAME are sent too")
    add("--trace", action="store_true", help="show the call's trace tree under the answer")
    add("--prompt", metavar="NAME",
        help="register the cell's template in the MLflow prompt registry under NAME (a new version only when "
             "the text changed) and link the trace to that version")
    add("--no-signals", action="store_false", dest="signals",
        help="leave out the feedback bar (thumbs, stars, edit, comment) under the answer")
    return parser


_PARSER = _build_parser()


def option_strings() -> list[str]:
    """Every flag spelling the parser accepts (the help test checks each is documented)."""
    return [s for action in _PARSER._actions for s in action.option_strings]


def flags_help() -> str:
    return _PARSER.format_help()


def parse_key_value(raw: str, flag: str = "-t", example: str = "project=support") -> tuple[str, str]:
    key, sep, value = raw.partition("=")
    if not sep or not key.strip() or not value.strip() or any(c.isspace() for c in key.strip()):
        raise ConfigError(f"{flag} {raw!r} is not key=value: write e.g. {flag} {example}")
    return key.strip(), value.strip()


def _reject_extra(words: list[str], extra: list[str], system: str | None) -> None:
    """The one-line error for the first word the parser did not take: a near-miss flag, an unquoted system
    prompt, or a stray word."""
    unknown = extra[0]
    if unknown.startswith("-"):
        flag = unknown.partition("=")[0]
        close = difflib.get_close_matches(flag, [s for s in option_strings() if s.startswith("--")], n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else "see %%llm? for every flag"
        raise ConfigError(f"%%llm: unknown flag {flag!r}; {hint}")
    position = words.index(unknown)
    if system is not None and position >= 2 and words[position - 2] in ("-s", "--system"):
        stray = [system, *extra[: _run_length(words, position, extra)]]
        raise ConfigError(f"%%llm: -s takes one word, so {unknown!r} was left over; quote the system prompt: "
                          f"-s \"{' '.join(stray)}\"")
    raise ConfigError(f"%%llm: unexpected {unknown!r} on the flags line; name a model with -m, "
                      f"e.g. %%llm -m {unknown}")


def _run_length(words: list[str], position: int, extra: list[str]) -> int:
    """How many of the leftover words follow one another from `position` (the rest of an unquoted prompt)."""
    count = 0
    while count < len(extra) and position + count < len(words) and words[position + count] == extra[count]:
        count += 1
    return count


def parse_cell_line(line: str) -> CellOptions:
    """Parse the text after `%%llm` into CellOptions."""
    words = split_words(line, "%%llm flags", 'close the quote, e.g. -s "You are terse."')
    namespace, extra = _PARSER.parse_known_args(words)
    if extra:
        _reject_extra(words, extra, namespace.system)
    tags = dict(parse_key_value(raw) for raw in namespace.tags)
    for name in [*namespace.models, *namespace.fallbacks]:
        if not name.strip():
            raise ConfigError("%%llm: -m/--fallback got an empty model name: write e.g. -m fake/echo")
    return CellOptions(
        models=list(namespace.models),
        fallbacks=list(namespace.fallbacks),
        system=namespace.system,
        tags=tags,
        temperature=namespace.temperature,
        max_tokens=namespace.max_tokens,
        seed=namespace.seed,
        format=namespace.format,
        out=namespace.out,
        cache=namespace.cache,
        stream=namespace.stream,
        chat=namespace.chat,
        trace=namespace.trace,
        signals=namespace.signals,
        prompt=namespace.prompt,
    )
