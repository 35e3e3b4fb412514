"""Every magic's error contract: a WorkbenchError shows as one red line, anything else raises as usual.

WORKBENCH_DEBUG=1 lets a WorkbenchError raise with its traceback too. Library warnings (litellm's pydantic
serializer notes, MLflow's) stay out of the cell while a magic runs.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from workbench.errors import WorkbenchError
from workbench.notebook.display import error_bundle

__all__ = ["debug_enabled", "show_error", "one_line_errors", "quiet_warnings"]

F = TypeVar("F", bound="Callable[..., Any]")


def debug_enabled() -> bool:
    return os.environ.get("WORKBENCH_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def show_error(exc: BaseException) -> None:
    from IPython.display import display

    data, metadata = error_bundle(exc)
    display(data, metadata=metadata, raw=True)


def one_line_errors(magic: F) -> F:
    """Every workbench magic: a WorkbenchError shows as one red line, not a traceback (WORKBENCH_DEBUG=1 raises)."""

    @functools.wraps(magic)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return magic(*args, **kwargs)
        except WorkbenchError as exc:
            if debug_enabled():
                raise
            show_error(exc)
            return None

    return run  # type: ignore[return-value]


@contextmanager
def quiet_warnings() -> Iterator[None]:
    """Keep library warnings (litellm's pydantic serializer notes, MLflow's) out of the cell during a call."""
    with warnings.catch_warnings():
        if not debug_enabled():
            warnings.filterwarnings("ignore", module=r"(litellm|pydantic|mlflow|httpx|transformers)(\.|$)")
            warnings.filterwarnings("ignore", message=r".*[Pp]ydantic serializer warnings.*")
        yield
