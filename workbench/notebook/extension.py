"""`%load_ext workbench`: registers `%%llm`, then every optional magic module that is installed.

Later stages plug their magics in by adding a module to OPTIONAL_MAGIC_MODULES; each exposes
`register(ipython)` (and may expose `unregister(ipython)`). A module that is not there yet is skipped;
one that fails to load is reported in one line and never breaks `%load_ext`. Keep this import-light:
the benchmark holds `%load_ext workbench` to < 0.15 s over a bare IPython start.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import weakref
from typing import Any

__all__ = ["OPTIONAL_MAGIC_MODULES", "load", "unload", "session_of", "loaded_modules"]

OPTIONAL_MAGIC_MODULES = [
    "workbench.notebook.trace_magics",  # %trace, %llm mlflow, %llm run
    "workbench.notebook.frontend",  # the JupyterLab status bar's call counter (adds no magic)
    "workbench.notebook.golden_magics",  # %golden
    "workbench.notebook.eval_magics",  # %eval
    "workbench.notebook.finetune_magics",  # %finetune
    "workbench.notebook.model_progress",  # the "preparing the bundled model once: 40 %" line (adds no magic)
]

# Loggers whose chatter must never land in a cell (setting a level does not import the library).
_NOISY_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm", "mlflow", "alembic", "httpx", "httpcore")

_sessions: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_added: weakref.WeakKeyDictionary[Any, list[tuple[str, str]]] = weakref.WeakKeyDictionary()
_loaded: weakref.WeakKeyDictionary[Any, list[str]] = weakref.WeakKeyDictionary()


def session_of(ipython: Any) -> Any:
    """The shell's Session; it outlives %reload_ext, so history and chats survive a reload."""
    from workbench.notebook.history import Session

    if ipython not in _sessions:
        _sessions[ipython] = Session()
    return _sessions[ipython]


def loaded_modules(ipython: Any) -> list[Any]:
    """The optional modules that %load_ext registered in this shell, in OPTIONAL_MAGIC_MODULES order."""
    return [sys.modules[name] for name in _loaded.get(ipython, []) if name in sys.modules]


def _magic_names(ipython: Any) -> set[tuple[str, str]]:
    tables = ipython.magics_manager.magics
    return {(kind, name) for kind in ("line", "cell") for name in tables[kind]}


def _quiet_loggers() -> None:
    from workbench.notebook.magics import debug_enabled

    if debug_enabled():
        return
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def load(ipython: Any) -> None:
    from workbench.notebook.magics import LLMMagics

    session = session_of(ipython)
    before = _magic_names(ipython)
    ipython.register_magics(LLMMagics(ipython, session))
    added = sorted(_magic_names(ipython) - before)
    loaded: list[str] = []

    def remember_cell(info: Any) -> None:  # the frontend's cell id, for history and lineage
        session.cell_id = getattr(info, "cell_id", None)
        session.store_history = bool(getattr(info, "store_history", True))

    session.hook = remember_cell
    ipython.events.register("pre_run_cell", remember_cell)
    _quiet_loggers()
    for module_name in OPTIONAL_MAGIC_MODULES:
        if module_name in sys.modules:
            module = sys.modules[module_name]
        elif importlib.util.find_spec(module_name) is None:
            continue  # that stage is not built yet
        else:
            module = None
        before = _magic_names(ipython)
        try:
            module = module or importlib.import_module(module_name)
            module.register(ipython)
        except Exception as exc:  # an optional stage must never break %load_ext
            print(f"workbench: {module_name} was not loaded ({type(exc).__name__}: {exc})", file=sys.stderr)
            continue
        added += sorted(_magic_names(ipython) - before)
        loaded.append(module_name)
    _added[ipython] = added
    _loaded[ipython] = loaded


def unload(ipython: Any) -> None:
    session = session_of(ipython)
    hook = getattr(session, "hook", None)
    if hook is not None:
        try:
            ipython.events.unregister("pre_run_cell", hook)
        except ValueError:
            pass
        session.hook = None
    for module_name in _loaded.pop(ipython, []):
        unregister = getattr(sys.modules.get(module_name), "unregister", None)
        if callable(unregister):
            unregister(ipython)
    tables = ipython.magics_manager.magics
    for kind, name in _added.pop(ipython, []):
        tables[kind].pop(name, None)
    ipython.magics_manager.registry.pop("LLMMagics", None)
