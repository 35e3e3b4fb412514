"""Who is calling: the name every trace, run, ledger row and feedback carries, so a team filters by person.

The MLflow username wins (it is who the team server and its gateway see), then JupyterHub's user, then
the OS login. Read on every use: a notebook may log in as another user after import.
"""

from __future__ import annotations

import getpass
import os

__all__ = ["user"]


def user() -> str:
    """MLFLOW_TRACKING_USERNAME, else JUPYTERHUB_USER, else the OS user (else 'unknown')."""
    for variable in ("MLFLOW_TRACKING_USERNAME", "JUPYTERHUB_USER"):
        value = (os.environ.get(variable) or "").strip()
        if value:
            return value
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"
