"""`{name}` interpolation of a cell body from the user namespace, exactly once.

str.format's grammar (so `{x:.2f}`, `{x!r}`, `{name.attr}`, `{name[key]}` and `{{`/`}}` all work), with our
own field lookup: names come only from the namespace, `{In[-1]}` and `{d['key']}` are allowed, and every
failure is a ConfigError that names the field. A value is inserted as text and never parsed again, so a
variable holding `{secret}` stays literally `{secret}`.
"""

from __future__ import annotations

import _string  # type: ignore[import-not-found]  # the parser str.format itself uses for field names
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import ConfigError

__all__ = ["Interpolated", "interpolate"]

_BRACES_HINT = "write {{ and }} for literal braces"


@dataclass(frozen=True)
class Interpolated:
    """A rendered cell body and where its values came from (for lineage: which variables fed the prompt)."""

    text: str
    template: str
    names: tuple[str, ...] = ()  # namespace names used, first use order
    fields: tuple[str, ...] = field(default=())  # the fields as written, e.g. "order.id", "In[3]"


def _key(raw: Any) -> Any:
    """`[3]` is already an int; also accept `[-1]` and quoted keys `['a']` that str.format would take literally."""
    if not isinstance(raw, str):
        return raw
    if raw.lstrip("-").isdigit():
        return int(raw)
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    return raw


class _Formatter(string.Formatter):
    def __init__(self, namespace: Mapping[str, Any]) -> None:
        self.namespace = namespace
        self.names: list[str] = []
        self.fields: list[str] = []

    def parse(self, format_string: str) -> Any:
        for literal, field_name, spec, conversion in super().parse(format_string):
            if field_name == "":  # `{}`: str.format would number it; a prompt has no positional values
                raise ConfigError(f"{{}} in the cell names no variable: put a name inside, e.g. {{ticket}}, "
                                  f"or {_BRACES_HINT}")
            yield literal, field_name, spec, conversion

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        first, rest = _string.formatter_field_name_split(field_name)
        if first == "" or isinstance(first, int):
            raise ConfigError(
                f"{{{field_name}}} in the cell names no variable: put a variable name inside, e.g. {{ticket}}, "
                f"or {_BRACES_HINT}"
            )
        if first not in self.namespace:
            raise ConfigError(
                f"{{{field_name}}} in the cell: no variable named {first!r} is defined; define it in a cell above, "
                f"or {_BRACES_HINT}"
            )
        value = self.namespace[first]
        path = first
        for is_attr, raw in rest:
            if is_attr:
                try:
                    value = getattr(value, raw)
                except AttributeError:
                    raise ConfigError(
                        f"{{{field_name}}} in the cell: {path} ({type(value).__name__}) has no attribute {raw!r}"
                    ) from None
                path += f".{raw}"
            else:
                key = _key(raw)
                try:
                    value = value[key]
                except (KeyError, IndexError, TypeError) as exc:
                    raise ConfigError(
                        f"{{{field_name}}} in the cell: {path}[{key!r}] failed ({type(exc).__name__}: {exc})"
                    ) from None
                path += f"[{key!r}]"
        if first not in self.names:
            self.names.append(first)
        self.fields.append(field_name)
        return value, first

    def format_field(self, value: Any, format_spec: str) -> str:
        try:
            return format(value, format_spec)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"format spec {format_spec!r} does not fit a {type(value).__name__} ({exc}); e.g. {{price:.2f}} "
                "for numbers"
            ) from None

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion not in (None, "r", "s", "a"):
            raise ConfigError(f"!{conversion} in the cell is not a conversion: use !r, !s or !a")
        return super().convert_field(value, conversion)


def interpolate(template: str, namespace: Mapping[str, Any]) -> Interpolated:
    """Fill `{...}` fields of `template` from `namespace`; raises ConfigError naming a bad field."""
    formatter = _Formatter(namespace)
    try:
        text = formatter.vformat(template, (), {})
    except ConfigError:
        raise
    except ValueError as exc:  # the grammar itself: a lone brace, an unclosed field
        raise ConfigError(f"the cell has a stray brace ({exc}); {_BRACES_HINT}, e.g. {{{{\"a\": 1}}}}") from None
    return Interpolated(text=text, template=template, names=tuple(formatter.names), fields=tuple(formatter.fields))
