"""The endpoints file: a LiteLLM proxy `model_list` read, checked and turned into plain records.

    model_list:
      - model_name: smol                              # the name a notebook asks for: %%llm -m smol
        litellm_params:
          model: openai/HuggingFaceTB/SmolLM2-135M-Instruct
          api_base: http://gpu-box:8000/v1
          api_key: os.environ/SMOL_API_KEY            # read from the environment at call time, never stored
          rpm: 60                                     # weights a route (LiteLLM's simple-shuffle), like the proxy
          timeout: 30
          input_cost_per_token: 0.0000001             # without a price, the cost is None ("unpriced")
          output_cost_per_token: 0.0000002
    router_settings:
      fallbacks: [{"smol": ["local/smollm2"]}]

It is the format a LiteLLM proxy reads, so one file serves a team's proxy and its notebooks. Several entries
with one model_name are a weighted route. The file is found at $WORKBENCH_ENDPOINTS, else `<project>/workbench.yaml`,
else `<home>/endpoints.yaml`. A bad file is one ConfigError line `<file>:<line>: <problem>; <fix>` (YAML node marks
give the line of the entry or key at fault).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import ConfigError
from workbench.secrets import is_secret_name

__all__ = ["Deployment", "EndpointsFile", "ENV_PREFIX", "find_file", "load", "parse", "env_reference"]

ENV_PREFIX = "os.environ/"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENTRY_KEYS = {"model_name", "litellm_params", "model_info"}
# Read by us, not sent to litellm as they are (prices are ours to apply; the key is resolved per call).
_OWN_KEYS = {"model", "api_key", "input_cost_per_token", "output_cost_per_token"}


@dataclass(frozen=True)
class Deployment:
    """One `model_list` entry (or one server passed as api_base= to complete()), its values as written."""

    name: str  # the model_name a call asks for
    label: str  # what answered, in footers and the ledger: the name, or name[i] in a route of several
    model: str  # litellm's model string
    api_base: str | None = None  # may be os.environ/NAME
    api_key_env: str | None = None  # NAME of `api_key: os.environ/NAME`
    params: dict[str, Any] = field(default_factory=dict)  # other litellm params (rpm, tpm, timeout, weight, ...)
    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None
    line: int = 0
    source: str = ""  # the file, for messages

    @property
    def where(self) -> str:
        """Where it points, never a key: the api_base as written (os.environ/NAME stays a name)."""
        return self.api_base or "the provider's default address"

    @property
    def priced(self) -> bool:
        return self.input_cost_per_token is not None or self.output_cost_per_token is not None


@dataclass(frozen=True)
class EndpointsFile:
    path: Path
    endpoints: dict[str, tuple[Deployment, ...]]
    fallbacks: dict[str, tuple[str, ...]]


class _Mapping(dict[str, Any]):
    """A YAML mapping that remembers its line and the line of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


def _loader() -> Any:
    import yaml  # type: ignore[import-untyped,unused-ignore]  # stubs are not a dependency

    class Loader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: Any, node: Any) -> _Mapping:
        mapping = _Mapping()
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise ConfigError(f"line {key_node.start_mark.line + 1}: key {key!r} must be a word; quote it")
            if key in mapping:
                raise ConfigError(f"line {key_node.start_mark.line + 1}: {key!r} appears twice in one mapping; "
                                  "keep one")
            mapping[key] = loader.construct_object(value_node, deep=True)
            mapping.key_lines[key] = key_node.start_mark.line + 1
        return mapping

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return Loader


def find_file() -> Path | None:
    """$WORKBENCH_ENDPOINTS (which must exist; `off` for none), else <project>/workbench.yaml, else
    <home>/endpoints.yaml, else None."""
    from workbench.config import find_home, settings

    named = os.environ.get("WORKBENCH_ENDPOINTS", "").strip()
    if named.lower() in ("off", "none"):
        return None
    if named:
        path = Path(named).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"WORKBENCH_ENDPOINTS={named!r} names no file: point it at your endpoints YAML "
                              "(a LiteLLM proxy config with model_list:) or unset it")
        return path
    for candidate in (find_home().parent / "workbench.yaml", settings().home / "endpoints.yaml"):
        if candidate.is_file():
            return candidate
    return None


def env_reference(value: object) -> str | None:
    """NAME for an `os.environ/NAME` value, else None."""
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        return value[len(ENV_PREFIX):]
    return None


def load(path: Path) -> EndpointsFile:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.__class__.__name__}: {exc}); fix its permissions or "
                          "WORKBENCH_ENDPOINTS") from None
    return parse(text, path)


def parse(text: str, path: Path) -> EndpointsFile:
    import yaml  # type: ignore[import-untyped,unused-ignore]  # stubs are not a dependency

    try:
        document = yaml.load(text, Loader=_loader())  # noqa: S506 - a SafeLoader subclass
    except ConfigError as exc:  # a duplicate or non-word key, raised with its line by construct_mapping
        raise ConfigError(f"{path}:{str(exc).removeprefix('line ')}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{line}: not valid YAML ({problem}); fix the indentation or quoting there") from None
    return _Checker(path).document(document)


class _Checker:
    """Checks the parsed document; every error names the file and the line of the entry or key at fault."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, line: int, problem: str, fix: str) -> ConfigError:
        return ConfigError(f"{self.path}:{line}: {problem}; {fix}")

    def document(self, document: Any) -> EndpointsFile:
        if not isinstance(document, _Mapping) or "model_list" not in document:
            line = document.line if isinstance(document, _Mapping) else 1
            raise self.fail(line, "no model_list: found",
                            "start the file with model_list: and one entry per endpoint (model_name, litellm_params)")
        entries = document["model_list"]
        if not isinstance(entries, list):
            raise self.fail(document.key_lines["model_list"], "model_list must be a list",
                            "write each entry as '- model_name: NAME' with its litellm_params below it")
        found: dict[str, list[Deployment]] = {}
        for index, entry in enumerate(entries):
            deployment = self.entry(entry, index, document.key_lines["model_list"])
            found.setdefault(deployment.name, []).append(deployment)
        endpoints = {name: self.labelled(group) for name, group in found.items()}
        fallbacks = self.fallbacks(document, endpoints)
        return EndpointsFile(self.path, endpoints, fallbacks)

    @staticmethod
    def labelled(group: list[Deployment]) -> tuple[Deployment, ...]:
        if len(group) == 1:
            return (group[0],)
        from dataclasses import replace

        return tuple(replace(d, label=f"{d.name}[{i}]") for i, d in enumerate(group))

    def entry(self, entry: Any, index: int, list_line: int) -> Deployment:
        if not isinstance(entry, _Mapping):
            raise self.fail(list_line + index + 1, f"model_list entry {index + 1} is {entry!r:.60}, not a mapping",
                            "write '- model_name: NAME' and indent litellm_params: under it")
        unknown = sorted(set(entry) - _ENTRY_KEYS)
        if unknown:
            raise self.fail(entry.key_lines[unknown[0]], f"unknown key {unknown[0]!r} in a model_list entry",
                            "an entry has model_name, litellm_params and (optionally) model_info")
        name = entry.get("model_name")
        if not isinstance(name, str) or not name.strip() or any(c.isspace() for c in name.strip()):
            raise self.fail(entry.key_lines.get("model_name", entry.line), f"model_name {name!r} is not a name",
                            "give each entry a model_name without spaces, e.g. model_name: smol")
        params = entry.get("litellm_params")
        if not isinstance(params, _Mapping):
            raise self.fail(entry.key_lines.get("litellm_params", entry.line),
                            f"entry {name!r} has no litellm_params mapping",
                            "add litellm_params: with at least model: provider/model (e.g. openai/my-model)")
        return self.deployment(name.strip(), params, entry.line)

    def deployment(self, name: str, params: _Mapping, line: int) -> Deployment:
        where = lambda key: params.key_lines.get(key, params.line)  # noqa: E731
        model = params.get("model")
        if not isinstance(model, str) or not model.strip():
            raise self.fail(where("model"), f"entry {name!r} has model={model!r}",
                            "set litellm_params.model to a litellm model string, e.g. openai/my-model or ollama/llama3")
        self.check_provider(model.strip(), name, where("model"))
        api_key = params.get("api_key")
        key_env = None
        if api_key is not None:
            key_env = env_reference(api_key)
            if key_env is None or not _ENV_NAME.match(key_env):
                # never quote the value: it may be a real key pasted into the file
                raise self.fail(where("api_key"), f"entry {name!r} has an api_key that is not os.environ/NAME",
                                "keys are never stored in files: write api_key: os.environ/NAME and export NAME")
        extra: dict[str, Any] = {}
        for key, value in params.items():
            if key in _OWN_KEYS:
                continue
            reference = env_reference(value)
            if reference is not None and not _ENV_NAME.match(reference):
                raise self.fail(where(key), f"{key}: {value!r} names no environment variable",
                                "write os.environ/NAME with NAME made of letters, digits and _")
            if reference is None and is_secret_name(key) and value:
                raise self.fail(where(key), f"entry {name!r} holds a literal {key}",
                                f"keys are never stored in files: write {key}: os.environ/NAME and export NAME")
            extra[key] = self.checked_value(key, value, name, where(key))
        api_base = extra.pop("api_base", None)
        if api_base is not None and env_reference(api_base) is None and not (
            isinstance(api_base, str) and api_base.startswith(("http://", "https://"))
        ):
            raise self.fail(where("api_base"), f"entry {name!r} has api_base={api_base!r}",
                            "write the server's URL, e.g. api_base: http://127.0.0.1:8000/v1, or os.environ/NAME")
        costs = {key: self.checked_value(key, params.get(key), name, where(key))
                 for key in ("input_cost_per_token", "output_cost_per_token")}
        return Deployment(
            name=name, label=name, model=model.strip(), api_base=api_base, api_key_env=key_env, params=extra,
            input_cost_per_token=costs["input_cost_per_token"], output_cost_per_token=costs["output_cost_per_token"],
            line=line, source=str(self.path),
        )

    def checked_value(self, key: str, value: Any, name: str, line: int) -> Any:
        if env_reference(value) is not None or value is None:
            return value
        if key in ("rpm", "tpm", "max_retries"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise self.fail(line, f"entry {name!r} has {key}={value!r}",
                                f"{key} is a whole number >= 0, e.g. {key}: 60")
        elif key in ("timeout", "stream_timeout", "weight", "input_cost_per_token", "output_cost_per_token"):
            number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            if not number or value < 0 or (key.endswith("timeout") and value == 0):
                examples = {"timeout": "timeout: 30", "stream_timeout": "stream_timeout: 30", "weight": "weight: 0.5"}
                example = examples.get(key, f"{key}: 0.0000002 (USD per token)")
                raise self.fail(line, f"entry {name!r} has {key}={value!r}", f"write a number >= 0, e.g. {example}")
            return float(value) if key != "weight" else value
        return value

    def check_provider(self, model: str, name: str, line: int) -> None:
        from workbench.providers.registry import CUSTOM_PROVIDERS, quiet_litellm

        if model.split("/", 1)[0] in CUSTOM_PROVIDERS:
            return
        try:
            quiet_litellm().get_llm_provider(model)
        except Exception:
            raise self.fail(line, f"entry {name!r}: litellm knows no provider for model {model!r}",
                            "write provider/model, e.g. openai/my-model for any OpenAI-compatible server "
                            "(vLLM, LM Studio, transformers serve) or ollama/llama3") from None

    def fallbacks(self, document: _Mapping, endpoints: dict[str, tuple[Deployment, ...]]) -> dict[str, tuple[str, ...]]:
        found: dict[str, tuple[str, ...]] = {}
        for section in ("router_settings", "litellm_settings"):  # the proxy accepts fallbacks in either
            settings = document.get(section)
            if not isinstance(settings, _Mapping) or "fallbacks" not in settings:
                continue
            line = settings.key_lines["fallbacks"]
            rules = settings["fallbacks"]
            example = 'fallbacks: [{"smol": ["local/smollm2"]}]'
            if not isinstance(rules, list):
                raise self.fail(line, f"{section}.fallbacks must be a list", f"write {example}")
            for rule in rules:
                if not isinstance(rule, dict) or len(rule) != 1:
                    raise self.fail(getattr(rule, "line", line), f"fallback rule {rule!r:.80} is not one name: [list]",
                                    f"write {example}")
                ((name, targets),) = rule.items()
                rule_line = rule.key_lines[name] if isinstance(rule, _Mapping) else line
                if name not in endpoints:
                    raise self.fail(rule_line, f"fallbacks for {name!r}, but no model_list entry is named {name!r}",
                                    f"name one of {', '.join(sorted(endpoints)) or 'your entries'}")
                if isinstance(targets, str):
                    targets = [targets]
                names_ok = isinstance(targets, list) and all(isinstance(t, str) and t.strip() for t in targets)
                if not names_ok or not targets:
                    raise self.fail(rule_line, f"fallbacks of {name!r} are {targets!r:.80}",
                                    f"list model names, e.g. {example}")
                for target in targets:
                    if target not in endpoints and "/" not in target:
                        raise self.fail(rule_line,
                                        f"fallback {target!r} of {name!r} is neither an entry nor provider/model",
                                        f"name an entry ({', '.join(sorted(endpoints))}) or a model such as "
                                        "local/smollm2")
                found[name] = tuple(t.strip() for t in targets)
        return found
