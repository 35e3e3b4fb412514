"""Settings: where Workbench keeps its files and which models it uses, resolved once.

Precedence: `workbench.configure(...)` > environment variables (also read from a `.env` file) > defaults.
The home folder is resolved once to an absolute path, so a notebook started from `notebooks/` shares
the project's store with scripts run from the project root.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import find_dotenv, load_dotenv

from workbench.errors import ConfigError

__all__ = ["Settings", "settings", "configure", "reset_settings", "find_home", "on_change"]

DEFAULT_MODEL = "local/smollm2"

# Environment variable -> Settings field. MLFLOW_TRACKING_URI is MLflow's own and is honoured too.
_ENV_FIELDS = {
    "WORKBENCH_HOME": "home",
    "WORKBENCH_MODEL": "default_model",
    "WORKBENCH_JUDGE_MODEL": "judge_model",
    "WORKBENCH_TRACKING_URI": "tracking_uri",
    "WORKBENCH_CACHE_TTL": "cache_ttl_s",
    "WORKBENCH_MAX_RETRIES": "max_retries",
    "WORKBENCH_RETRY_BACKOFF": "retry_backoff_s",
    "WORKBENCH_TIMEOUT": "timeout_s",
    "WORKBENCH_TRACING": "tracing",
}


@dataclass(frozen=True)
class Settings:
    home: Path
    default_model: str = DEFAULT_MODEL
    judge_model: str | None = None  # None: the default model judges (see docs: a 135M model is no judge)
    tracking_uri: str | None = None  # None: sqlite:///<home>/mlflow.db
    cache_ttl_s: float | None = None  # None: cached answers never expire
    max_retries: int = 2  # retries per model on rate limits, timeouts and server errors
    retry_backoff_s: float = 0.5  # first backoff; doubles each retry
    timeout_s: float | None = 600.0
    tracing: str = "on"  # on: traces recorded and stored in MLflow; memory: recorded, not stored; off
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cache_path(self) -> Path:
        return self.home / "cache.sqlite"

    @property
    def ledger_path(self) -> Path:
        return self.home / "ledger.sqlite"

    @property
    def effective_judge_model(self) -> str:
        return self.judge_model or self.default_model

    @property
    def effective_tracking_uri(self) -> str:
        return self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{self.home / 'mlflow.db'}"


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(Settings) if f.name != "extra")
_lock = threading.Lock()
_current: Settings | None = None
_overrides: dict[str, Any] = {}
# Called after the settings change: stores opened for the old home are dropped (sqlite_store registers here,
# so this floor-0 module never imports what sits on it).
_change_hooks: list[Callable[[], None]] = []


def find_home(start: Path | None = None) -> Path:
    """`.workbench/` in the nearest folder up from `start` that holds pyproject.toml or .git, else in `start`."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").exists() or (folder / ".git").exists():
            return folder / ".workbench"
    return start / ".workbench"


def _load_dotenv() -> None:
    # API keys may live in a .env file; real environment variables win.
    path = find_dotenv(usecwd=True)
    if path:
        load_dotenv(path, override=False)


def _validate(name: str, value: Any) -> Any:
    """Coerce one field's value, or raise a ConfigError that quotes it."""
    if name == "home":
        if value in (None, ""):
            raise ConfigError("home is empty: pass a folder path, e.g. configure(home='.workbench')")
        try:
            path = Path(value).expanduser().resolve()
        except TypeError:
            raise ConfigError(f"home={value!r} is not a folder path: pass e.g. configure(home='.workbench')") from None
        if path.exists() and not path.is_dir():
            raise ConfigError(f"home={str(value)!r} is a file, not a folder: pass a folder path, "
                              "e.g. configure(home='.workbench')")
        return path
    if name in ("default_model", "judge_model", "tracking_uri"):
        if value is None and name != "default_model":
            return None
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{name}={value!r} is not a usable string: pass e.g. {name}='fake/echo'")
        return value.strip()
    if name == "cache_ttl_s" or name == "timeout_s":
        if value in (None, "", "none", "None"):
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}={value!r} is not a number of seconds: pass e.g. {name}=3600") from None
        if not number > 0:  # NaN too
            raise ConfigError(f"{name}={value!r} must be > 0 seconds (or None for no limit)")
        return number
    if name == "max_retries":
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ConfigError(f"max_retries={value!r} is not a whole number: pass e.g. max_retries=2")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"max_retries={value!r} is not a whole number: pass e.g. max_retries=2") from None
        if number < 0 or number > 20:
            raise ConfigError(f"max_retries={value!r} is out of range: use 0..20")
        return number
    if name == "retry_backoff_s":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"retry_backoff_s={value!r} is not a number: pass e.g. retry_backoff_s=0.5") from None
        if not 0 <= number <= 3600:  # NaN and infinity too
            raise ConfigError(f"retry_backoff_s={value!r} must be a number of seconds from 0 to 3600, "
                              "e.g. retry_backoff_s=0.5")
        return number
    if name == "tracing":
        text = str(value).strip().lower()
        mode = {"true": "on", "1": "on", "yes": "on", "on": "on", "memory": "memory",
                "false": "off", "0": "off", "no": "off", "off": "off"}.get(text)
        if mode is None:
            raise ConfigError(f"tracing={value!r} is not a tracing mode: use 'on' (store traces in MLflow), "
                              "'memory' (keep them in this process only) or 'off', e.g. WORKBENCH_TRACING=memory")
        return mode
    raise ConfigError(f"unknown setting {name!r}: known settings are {', '.join(_FIELD_NAMES)}")


def _resolve() -> Settings:
    _load_dotenv()
    values: dict[str, Any] = {}
    for env_name, field_name in _ENV_FIELDS.items():
        raw = os.environ.get(env_name)
        if raw not in (None, ""):
            try:
                values[field_name] = _validate(field_name, raw)
            except ConfigError as exc:
                raise ConfigError(f"environment variable {env_name}: {exc}") from None
    values.update(_overrides)
    values.setdefault("home", find_home())
    return Settings(**values)


def settings() -> Settings:
    """The current settings, resolved on first use and then kept."""
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                _current = _resolve()
    return _current


def configure(**options: object) -> Settings:
    """Set options for this process: home, default_model, judge_model, tracking_uri, cache_ttl_s,
    max_retries, retry_backoff_s, timeout_s, tracing. Unknown names and bad values raise ConfigError."""
    global _current
    checked = {name: _validate(name, value) for name, value in options.items()}
    with _lock:
        _overrides.update(checked)
        _current = None
    _changed()  # a new home means new store files
    return settings()


def reset_settings() -> None:
    """Forget configure() overrides and re-read the environment (tests use this)."""
    global _current
    with _lock:
        _overrides.clear()
        _current = None
    _changed()


def on_change(hook: Callable[[], None]) -> None:
    """Call `hook()` each time configure() or reset_settings() changes the settings (once per hook)."""
    with _lock:
        if hook not in _change_hooks:
            _change_hooks.append(hook)


def _changed() -> None:
    with _lock:
        hooks = list(_change_hooks)
    for hook in hooks:
        hook()
