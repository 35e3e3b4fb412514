"""Which failures are worth retrying, and how long to wait between tries."""

from __future__ import annotations

import re
from dataclasses import dataclass

from workbench.errors import WorkbenchError
from workbench.secrets import redact

__all__ = ["Classified", "classify", "backoff_s"]

# litellm exception class names; matched by name so this module does not import litellm.
_RETRYABLE = {
    "RateLimitError",
    "Timeout",
    "APITimeoutError",
    "InternalServerError",
    "ServiceUnavailableError",
    "APIConnectionError",
    "BadGatewayError",
    "MidStreamFallbackError",
    "TimeoutError",
    "ConnectionError",
}
_MAX_BACKOFF_S = 8.0


@dataclass(frozen=True)
class Classified:
    error_type: str
    message: str  # redacted, one line
    retryable: bool


def classify(exc: BaseException) -> Classified:
    name = type(exc).__name__
    if isinstance(exc, WorkbenchError):  # ours (missing key, bad local model): retrying cannot help
        return Classified(name, redact(str(exc)), False)
    status = getattr(exc, "status_code", None)
    retryable = name in _RETRYABLE or (isinstance(status, int) and (status == 429 or status >= 500))
    if name in {"BadRequestError", "AuthenticationError", "PermissionDeniedError", "NotFoundError",
                "ContextWindowExceededError", "ContentPolicyViolationError", "UnprocessableEntityError"}:
        retryable = False
    return Classified(name, redact(_one_line(exc))[:500], retryable)


_TYPE_PREFIX = re.compile(r"^(?:litellm\.)?[A-Za-z]+(?:Error|Exception|Timeout):\s*")


def _one_line(exc: BaseException) -> str:
    """The provider's message without litellm's repeated 'litellm.XError:' prefixes and trailers."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    text = text.split(" Original exception:", 1)[0].splitlines()[0]
    while _TYPE_PREFIX.match(text):
        text = _TYPE_PREFIX.sub("", text, count=1)
    return text.strip() or type(exc).__name__


def backoff_s(retry_index: int, base_s: float) -> float:
    """Exponential backoff: base, 2*base, 4*base... capped."""
    return min(base_s * (2**retry_index), _MAX_BACKOFF_S)
