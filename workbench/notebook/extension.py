"""`%load_ext workbench`: registers every magic of the notebook layer, and `%unload_ext` removes them again.

The magics are a fixed list (no plug-ins found at run time): `%%llm`/`%llm`, `%trace`, `%golden`, `%eval`,
`%finetune`, plus the JupyterLab status bar's call counter (frontend, no magic) and the bundled model's one-time
preparation line (model_progress, no magic). Keep this import-light: the benchmark holds `%load_ext workbench` to
< 0.15 s over a bare IPython start, and nothing heavy loads here.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from typing import Any

from workbench.notebook import eval_magics, finetune_magics, frontend, golden_magics, model_progress, trace_magics
from workbench.notebook.guard import debug_enabled
from workbench.notebook.history import Session
from workbench.notebook.magics import LLMMagics

__all__ = ["load", "unload", "session_of"]

# Loggers whose chatter must never land in a cell (setting a level does not import the library).
_NOISY_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm", "mlflow", "alembic", "httpx", "httpcore")

# The Magics classes registered here (IPython keeps each in magics_manager.registry under its class name).
_CLASSES = ("LLMMagics", "GoldenMagics", "EvalMagics", "FineTuneMagics")

_sessions: weakref.WeakKeyDictionary[Any, Session] = weakref.WeakKeyDictionary()
_added: weakref.WeakKeyDictionary[Any, list[tuple[str, str]]] = weakref.WeakKeyDictionary()


def session_of(ipython: Any) -> Session:
    """The shell's Session; it outlives %reload_ext, so history and chats survive a reload."""
    if ipython not in _sessions:
        _sessions[ipython] = Session()
    return _sessions[ipython]


def _magic_names(ipython: Any) -> set[tuple[str, str]]:
    tables = ipython.magics_manager.magics
    return {(kind, name) for kind in ("line", "cell") for name in tables[kind]}


def _quiet_loggers() -> None:
    if debug_enabled():
        return
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def load(ipython: Any) -> None:
    session = session_of(ipython)
    before = _magic_names(ipython)
    ipython.register_magics(LLMMagics(ipython, session))
    trace_magics.register(ipython)
    golden_magics.register(ipython, session)
    eval_magics.register(ipython)
    finetune_magics.register(ipython)
    frontend.register(ipython)
    model_progress.register(ipython)  # the "preparing the bundled model once: 40 %" line

    def remember_cell(info: Any) -> None:  # the frontend's cell id, for history and lineage
        session.cell_id = getattr(info, "cell_id", None)
        session.store_history = bool(getattr(info, "store_history", True))

    session.hook = remember_cell
    ipython.events.register("pre_run_cell", remember_cell)
    _quiet_loggers()
    _added[ipython] = sorted(_magic_names(ipython) - before)


def unload(ipython: Any) -> None:
    session = session_of(ipython)
    hook = session.hook
    if hook is not None:
        with contextlib.suppress(ValueError):  # already gone (the shell was reset)
            ipython.events.unregister("pre_run_cell", hook)
        session.hook = None
    frontend.unregister(ipython)
    model_progress.unregister(ipython)
    tables = ipython.magics_manager.magics
    for kind, name in _added.pop(ipython, []):
        tables[kind].pop(name, None)
    for name in _CLASSES:
        ipython.magics_manager.registry.pop(name, None)
