"""One exception tree for everything Workbench raises on purpose.

Every message names the bad value and says how to fix it, in one line, so a notebook can show it
as a single red line without a traceback::

    WorkbenchError
    ├── ConfigError            a bad option value or setting (configure, flags, prices, budgets)
    ├── ModelError             a model string nothing can serve (unknown provider, unknown alias)
    ├── MissingKeyError        a provider needs an API key that is not set (names the variable)
    ├── ProviderError          the provider (and every fallback) failed; carries the attempts
    │   ├── StreamInterrupted  a stream broke after partial output (never cached or counted as success)
    │   └── RateLimited        a 429 handed back to a caller that paces itself (carries Retry-After)
    ├── BudgetExceeded         the call would go over a budget; says the budget, spend, and how to raise it
    ├── StoreError             a local store (cache, ledger) cannot be opened or read
    ├── NotFoundError          a named thing (trace, prompt, run, adapter, dataset) does not exist; also a LookupError
    ├── DataError              input data (a dataset file, a row, a record) is malformed; names the row and the fix
    ├── AccessDenied           the team server knows the user but refuses the action (HTTP 403)
    ├── TeamServerError        the team server cannot be reached or answered an error
    └── FineTuneError          a fine-tune's child process failed or was killed; carries the tail of its log

And one root for every warning the package gives, so `warnings.filterwarnings("ignore", category=WorkbenchWarning)`
silences them all::

    WorkbenchWarning (UserWarning)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "WorkbenchError",
    "ConfigError",
    "ModelError",
    "MissingKeyError",
    "ProviderError",
    "StreamInterrupted",
    "RateLimited",
    "BudgetExceeded",
    "StoreError",
    "NotFoundError",
    "DataError",
    "AccessDenied",
    "TeamServerError",
    "FineTuneError",
    "WorkbenchWarning",
    "Attempt",
]


@dataclass(frozen=True)
class Attempt:
    """One failed try at one model: what failed, how, and how long it took (re-exported by gateway.response).

    It lives here, with the errors that carry it (ProviderError.attempts), so this floor-0 module imports nothing."""

    model: str
    error_type: str
    message: str
    latency_ms: float
    retryable: bool = False
    started_at: float = 0.0  # epoch seconds, so a tracer can place the try on a timeline


class WorkbenchError(Exception):
    """Root of every error Workbench raises on purpose; the message says how to fix it."""


class ConfigError(WorkbenchError, ValueError):
    """A bad option or setting value."""


class ModelError(WorkbenchError, ValueError):
    """A model string that no provider, alias or route can serve."""


class MissingKeyError(WorkbenchError):
    """A provider needs an API key that is not set in the environment or `.env`."""

    def __init__(self, message: str, *, variables: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.variables = variables


class ProviderError(WorkbenchError):
    """A model (and all its fallbacks) failed; `attempts` lists every failed try."""

    def __init__(self, message: str, *, attempts: list[Attempt] | None = None) -> None:
        super().__init__(message)
        self.attempts: list[Attempt] = list(attempts or [])


class StreamInterrupted(ProviderError):
    """A stream broke after some text arrived; `partial_text` holds what came."""

    def __init__(self, message: str, *, partial_text: str = "", attempts: list[Attempt] | None = None) -> None:
        super().__init__(message, attempts=attempts)
        self.partial_text = partial_text


class RateLimited(ProviderError):
    """A 429 raised at once (no retry) for a caller that paces itself; `retry_after_s` as the provider asked."""

    def __init__(self, message: str, *, attempts: list[Attempt] | None = None,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message, attempts=attempts)
        self.retry_after_s = retry_after_s


class BudgetExceeded(WorkbenchError):
    """The call would take spending over a budget; nothing was sent."""

    def __init__(self, message: str, *, budget_usd: float = 0.0, spent_usd: float = 0.0) -> None:
        super().__init__(message)
        self.budget_usd = budget_usd
        self.spent_usd = spent_usd


class StoreError(WorkbenchError):
    """A local sqlite store (cache, ledger) could not be opened or used."""


class NotFoundError(WorkbenchError, LookupError):
    """A trace, prompt, run, adapter or dataset asked for by name or id does not exist; the message says what does."""


class DataError(WorkbenchError, ValueError):
    """Input data is malformed (a dataset row, a file, a record); the message names where and how to fix it."""


class AccessDenied(WorkbenchError):
    """The team server knows who is asking but refuses them this action or endpoint (HTTP 403)."""


class TeamServerError(WorkbenchError):
    """The team's MLflow server could not be reached in time, or answered an error."""


class WorkbenchWarning(UserWarning):
    """Root of every warning Workbench gives (filter them all with this category)."""


class FineTuneError(WorkbenchError):
    """A fine-tune failed in its child process (a crash, out of memory, a training error); `log` holds its tail."""

    def __init__(self, message: str, *, log: str = "") -> None:
        super().__init__(message)
        self.log = log
