"""The endpoints file of this process: found and read on first use, reread by `reload_endpoints()`.

A file that does not load costs only itself: its problem is one line (warned once, shown by `%llm models` and in
the error of a call that names one of its endpoints) and every other model keeps answering. A reload that fails
keeps the endpoints loaded before, so a typo made while editing does not take working endpoints away.
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import ConfigError, WorkbenchWarning
from workbench.gateway import prices
from workbench.gateway.endpoint_routes import EndpointRoute, from_deployments
from workbench.gateway.endpoints import EndpointsFile, find_file, load

__all__ = ["lookup", "fallbacks_for", "problem", "reload_endpoints", "list_endpoints", "price_rule", "reset",
           "EndpointInfo", "describe_path"]


@dataclass(frozen=True)
class EndpointInfo:
    """One endpoint as `%llm models` shows it: where it points, never a key."""

    name: str
    label: str
    model: str
    where: str
    key: str  # "$NAME" of its api_key: os.environ/NAME, or "none"
    price: str
    fallbacks: tuple[str, ...]
    file: str
    line: int


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.context: tuple[str, str, str] | None = None  # what the file was looked up for (env, home, cwd)
        self.file: EndpointsFile | None = None
        self.routes: dict[str, EndpointRoute] = {}
        self.problem: str | None = None
        self.warned: set[str] = set()


_state = _State()


def _context() -> tuple[str, str, str]:
    from workbench.config import settings

    return os.environ.get("WORKBENCH_ENDPOINTS", ""), str(settings().home), os.getcwd()


def _install(found: EndpointsFile | None) -> None:
    _state.file = found
    groups = {} if found is None else found.endpoints
    _state.routes = {name: from_deployments(name, group) for name, group in groups.items()}


def _load(*, keep_previous: bool) -> None:
    """Read the file now; on failure keep (or not) what was loaded and remember the one-line problem."""
    try:
        path = find_file()
        found = None if path is None else load(path)
    except ConfigError as exc:
        _state.problem = str(exc)
        if not keep_previous:
            _install(None)
        raise
    _state.problem = None
    _install(found)


def _ensure() -> None:
    context = _context()
    if _state.context == context:
        return
    with _state.lock:
        if _state.context == context:
            return
        try:
            _load(keep_previous=False)
        except ConfigError as exc:
            if str(exc) not in _state.warned:  # once per problem, not per call
                _state.warned.add(str(exc))
                warnings.warn(f"endpoints not loaded: {exc}", WorkbenchWarning, stacklevel=4)
        finally:  # set last: another thread's unlocked check above must not see a half-loaded file
            _state.context = context


def lookup(name: str) -> EndpointRoute | None:
    """The endpoint named `name` in the endpoints file, or None."""
    _ensure()
    return _state.routes.get(name)


def fallbacks_for(name: str) -> tuple[str, ...]:
    """The file's router_settings.fallbacks for `name` (used when the call names none)."""
    _ensure()
    return _state.file.fallbacks.get(name, ()) if _state.file is not None else ()


def problem() -> str | None:
    """Why the endpoints file did not load (one line), or None."""
    _ensure()
    return _state.problem


def reload_endpoints() -> EndpointsFile | None:
    """Reread the endpoints file; raises ConfigError (one line: file, line, fix) and keeps the old endpoints if
    the new file is bad. Returns the file read, or None when there is none."""
    with _state.lock:
        _state.context = _context()
        before = len(_state.routes)
        try:
            _load(keep_previous=True)
        except ConfigError as exc:
            kept = f"; kept the {before} endpoint(s) loaded before" if before else ""
            raise ConfigError(f"{exc}{kept}") from None
        return _state.file


def _price_text(group: tuple[Any, ...]) -> str:
    found = prices.price_of(group[0].label)
    if found is None:
        return "unpriced"
    return f"${found.input_per_1m:g} in / ${found.output_per_1m:g} out per 1M tokens"


def list_endpoints() -> list[EndpointInfo]:
    """Every endpoint of the file, one row per deployment."""
    _ensure()
    rows: list[EndpointInfo] = []
    if _state.file is None:
        return rows
    for name, group in _state.file.endpoints.items():
        price = _price_text(group)
        for deployment in group:
            rows.append(EndpointInfo(
                name=name, label=deployment.label, model=deployment.model, where=deployment.where,
                key=f"${deployment.api_key_env}" if deployment.api_key_env else "none",
                price=price, fallbacks=_state.file.fallbacks.get(name, ()), file=deployment.source,
                line=deployment.line,
            ))
    return rows


def price_rule(label: str) -> tuple[tuple[float | None, float | None] | None, tuple[str, ...], str | None] | None:
    """How to price what answered as `label`, when that is an endpoint of the file; None otherwise.

    (per-token prices from the file or None, names whose set_price applies, model string whose litellm price
    applies or None). An endpoint with an api_base is a server of someone's own: litellm's list does not price it."""
    _ensure()
    if _state.file is None:
        return None
    for name, group in _state.file.endpoints.items():
        for deployment in group:
            if deployment.label == label:
                explicit = ((deployment.input_cost_per_token, deployment.output_cost_per_token)
                            if deployment.priced else None)
                names = tuple(dict.fromkeys((label, name)))
                return explicit, names, (None if deployment.api_base else deployment.model)
    return None


def reset() -> None:
    """Forget the loaded file (tests; a new home is noticed by itself)."""
    with _state.lock:
        _state.context = None
        _install(None)
        _state.problem = None
        _state.warned.clear()


def describe_path() -> Path | None:
    _ensure()
    return _state.file.path if _state.file is not None else None


# What an endpoint answers is priced by its entry: registered here, so prices imports nothing of the endpoints file
# (models.py imports this module, so the rule is in place before any endpoint can answer).
prices.add_price_rule(price_rule)

