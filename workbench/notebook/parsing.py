"""The one argument parser and the one line splitter of every magic (`%%llm`, `%llm`, `%golden`, `%eval`, ...).

argparse prints usage and exits the process on a bad argument; in a kernel that would be a SystemExit
traceback. A MagicParser raises a ConfigError instead: one line that names the magic, the problem and a fix.
"""

from __future__ import annotations

import argparse
import shlex
from typing import NoReturn

from workbench.errors import ConfigError

__all__ = ["MagicParser", "split_words"]


class MagicParser(argparse.ArgumentParser):
    """argparse for a magic: no -h (`%magic?` is the help), no abbreviations (`--temp` must not mean
    `--temperature`), and every error a ConfigError that ends with `hint` (an example or where the help is)."""

    def __init__(self, prog: str, hint: str, **kwargs: object) -> None:
        super().__init__(prog=prog, add_help=False, allow_abbrev=False, **kwargs)  # type: ignore[arg-type]
        self.hint = hint

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{self.prog}: {message}; {self.hint}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise ConfigError(f"{self.prog}: {(message or 'bad arguments').strip()}; {self.hint}")


def split_words(line: str, magic: str, hint: str = "close the quote") -> list[str]:
    """The words of a magic's line, shell-style; an unclosed quote is a ConfigError naming the line."""
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise ConfigError(f"{magic} {line.strip()!r}: {exc}; {hint}") from None
