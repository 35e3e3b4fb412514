"""Prompt templates in the MLflow prompt registry: register (a new version only when the text changed),
load, list.

Our templates use `{x}` (with `{{` for a literal brace) while MLflow's use `{{x}}`. We store ours verbatim
and tag the version `workbench.syntax=format`, so a template reads back exactly as written and is formatted
with our rules; a prompt registered by MLflow itself keeps MLflow's syntax and rules.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.errors import ConfigError, StoreError
from workbench.secrets import redact
from workbench.tracking.backend import ensure_mlflow
from workbench.tracking.gate import is_not_found

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Prompt", "prompt", "prompts", "register_prompt", "template_variables", "SYNTAX_TAG"]

SYNTAX_TAG = "workbench.syntax"
_OURS = "format"
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_MLFLOW_VAR = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")


def template_variables(template: str, syntax: str = _OURS) -> tuple[str, ...]:
    """Names a template needs, in first-use order."""
    if syntax != _OURS:
        return tuple(dict.fromkeys(_MLFLOW_VAR.findall(template)))
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ConfigError(f"template is not valid: {exc}; write {{{{ and }}}} for literal braces") from None
    return tuple(dict.fromkeys(re.split(r"[.\[!:]", f, maxsplit=1)[0] for f in fields if f))


@dataclass(frozen=True)
class Prompt:
    """One version of a registered prompt."""

    name: str
    version: int
    template: str
    syntax: str = _OURS  # "format" ({x}, ours) or "mlflow" ({{x}})
    commit_message: str | None = None
    created_at: float | None = None  # epoch seconds

    @property
    def variables(self) -> tuple[str, ...]:
        return template_variables(self.template, self.syntax)

    @property
    def uri(self) -> str:
        return f"prompts:/{self.name}/{self.version}"

    def format(self, **values: Any) -> str:
        missing = [v for v in self.variables if v not in values]
        if missing:
            raise ConfigError(f"prompt {self.name!r} v{self.version} needs {', '.join(missing)}: "
                              f"pass them, e.g. .format({missing[0]}=...)")
        if self.syntax != _OURS:
            return _MLFLOW_VAR.sub(lambda m: str(values[m.group(1)]), self.template)
        try:
            return string.Formatter().vformat(self.template, (), values)
        except (IndexError, KeyError, ValueError, AttributeError) as exc:
            raise ConfigError(f"prompt {self.name!r} v{self.version} cannot be formatted: {exc}") from None

    def __str__(self) -> str:
        return self.template


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"prompt name {name!r} is not valid: use letters, digits, '_', '-' and '.', "
                          "e.g. 'support-reply'")
    return name


def _from_mlflow(version: Any) -> Prompt:
    template = version.template
    if not isinstance(template, str):  # a chat prompt registered elsewhere: keep it readable
        template = json.dumps(template, ensure_ascii=False)
    syntax = _OURS if (version.tags or {}).get(SYNTAX_TAG) == _OURS else "mlflow"
    created = version.creation_timestamp / 1000 if version.creation_timestamp else None
    return Prompt(version.name, int(version.version), template, syntax, version.commit_message, created)


def _load(mlflow: Any, name: str, version: int | str | None) -> Any:
    uri = f"prompts:/{name}@latest" if version is None else f"prompts:/{name}/{int(version)}"
    return mlflow.genai.load_prompt(uri, allow_missing=True, link_to_model=False, cache_ttl_seconds=0)


def register_prompt(name: str, template: str, *, commit_message: str | None = None,
                    tags: dict[str, str] | None = None) -> Prompt:
    """Register `template` under `name`: a new version only when the text differs from the latest one."""
    _check_name(name)
    if not isinstance(template, str) or not template.strip():
        raise ConfigError(f"template for prompt {name!r} is empty: pass the template text")
    template_variables(template)  # a malformed template is refused before anything is stored
    if redact(template) != template:
        raise ConfigError(f"the template for prompt {name!r} contains what looks like an API key: remove it "
                          "and pass the key through the environment")
    mlflow = ensure_mlflow()
    try:
        latest = _load(mlflow, name, None)
        if latest is not None and latest.template == template and (latest.tags or {}).get(SYNTAX_TAG) == _OURS:
            return _from_mlflow(latest)
        created = mlflow.genai.register_prompt(name=name, template=template, commit_message=commit_message,
                                               tags={**(tags or {}), SYNTAX_TAG: _OURS})
    except ConfigError:
        raise
    except Exception as exc:
        raise StoreError(f"registering prompt {name!r} failed: {redact(str(exc))[:300]}") from exc
    return _from_mlflow(created)


def prompt(name: str, version: int | str | None = None) -> Prompt:
    """A registered prompt: the latest version, or the one asked for."""
    _check_name(name)
    if version is not None:
        try:
            version = int(version)
        except (TypeError, ValueError):
            raise ConfigError(f"version={version!r} is not a version number: pass e.g. version=2") from None
    mlflow = ensure_mlflow()
    try:
        found = _load(mlflow, name, version)
    except Exception as exc:
        if is_not_found(exc):
            found = None
        else:
            raise StoreError(f"loading prompt {name!r} failed: {redact(str(exc))[:300]}") from exc
    if found is None:
        which = "" if version is None else f" version {version}"
        raise ConfigError(f"no prompt {name!r}{which} in the registry: register it with %%llm --prompt {name} "
                          f"or workbench.register_prompt({name!r}, template); workbench.prompts() lists them")
    return _from_mlflow(found)


def prompts() -> pd.DataFrame:
    """Registered prompts as a DataFrame: name, latest version, syntax, variables, template, created."""
    import pandas as pd

    mlflow = ensure_mlflow()
    try:
        found = list(mlflow.genai.search_prompts(max_results=1000))
    except Exception as exc:
        raise StoreError(f"listing prompts failed: {redact(str(exc))[:300]}") from exc
    rows = []
    for entry in found:
        latest = _load(mlflow, entry.name, None)
        if latest is None:
            continue
        item = _from_mlflow(latest)
        rows.append({"name": item.name, "version": item.version, "syntax": item.syntax,
                     "variables": ", ".join(item.variables), "template": item.template,
                     "created": pd.to_datetime(item.created_at, unit="s") if item.created_at else None})
    columns = ["name", "version", "syntax", "variables", "template", "created"]
    return pd.DataFrame(rows, columns=columns).sort_values("name", ignore_index=True)
