"""Keep API keys out of everything we write: error texts, attempts, caches, ledgers, traces.

The values to hide are read from the environment (a `.env` file is loaded into it first): any variable
whose name looks like a credential. Provider messages that quote a key (`Incorrect API key provided:
sk-...`) are also masked by pattern, in case the key came from somewhere else.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from typing import Any

__all__ = ["secret_values", "redact", "is_secret_name", "scrub_params", "key_variables_set", "remember_secret",
           "remember_credentials"]

# Whole underscore-separated words only: HF_TOKEN and OPENAI_API_KEY are secrets, max_tokens is not.
_SECRET_NAME = re.compile(
    r"(?:^|_)(?:API_?KEY|TOKEN|SECRET|SECRET_KEY|PASSWORD|PASSWD|CREDENTIALS?|ACCESS_KEY|PRIVATE_KEY)(?:$|_)",
    re.IGNORECASE,
)
_KEY_PATTERNS = [
    re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"),  # OpenAI, Anthropic (sk-ant-...), many proxies
    re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"),  # Google
    re.compile(r"\b(?:gsk|xai|hf|pplx|r8)_[A-Za-z0-9]{16,}"),  # Groq, xAI, Hugging Face, Perplexity, Replicate
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{12,}"),
    re.compile(r"(://[^/\s:@]*:)[^@\s/]+(@)"),  # user:password@ in URLs (tracking URIs, proxies)
    # ?password=... in a URI's query (database URLs, presigned links); group 1 keeps the name
    re.compile(r"(?i)([?&](?:password|passwd|pwd|token|access_token|api_key|apikey|secret|sig|signature)=)"
               r"[^&\s#'\"]+"),
]
MASK = "***"
_MIN_SECRET_LEN = 6  # shorter values would mask ordinary words
# Credentials a call received other than through a credential-named variable (api_key= passed to complete(),
# an endpoint's `api_key: os.environ/ANY_NAME`, an Authorization header): kept for the rest of the process, not
# only the call, since the call's trace is exported later on another thread. Bounded, most recently used kept.
_remembered: dict[str, None] = {}
_REMEMBER_MAX = 256
_remembered_lock = threading.Lock()
# A header whose name holds one of these carries a credential (Authorization, X-Api-Key, Cookie...).
_SECRET_HEADER_WORDS = ("auth", "key", "token", "secret", "cookie", "password")


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def remember_secret(value: object) -> None:
    """Redact `value` from now on, wherever it appears (a key passed to a call, whatever variable it came from).
    Short values would mask ordinary words: ignored."""
    if not isinstance(value, str) or len(value.strip()) < _MIN_SECRET_LEN:
        return
    value = value.strip()
    with _remembered_lock:
        _remembered.pop(value, None)  # re-inserted last: a key in use is never the one forgotten
        _remembered[value] = None
        while len(_remembered) > _REMEMBER_MAX:
            del _remembered[next(iter(_remembered))]


def remember_credentials(params: Mapping[str, Any]) -> None:
    """Every credential among a call's parameters joins the redaction set: api_key=, *_secret_access_key=,
    and Authorization-like headers (with and without their 'Bearer ')."""
    for name, value in params.items():
        if is_secret_name(str(name)):
            remember_secret(value)
        elif name in ("extra_headers", "headers") and isinstance(value, Mapping):
            for header, text in value.items():
                if any(word in str(header).lower() for word in _SECRET_HEADER_WORDS):
                    remember_secret(text)
                    if isinstance(text, str) and " " in text.strip():
                        remember_secret(text.strip().split(None, 1)[1])  # "Bearer <token>", "Basic <b64>"


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if is_secret_name(k) and v and len(v) >= _MIN_SECRET_LEN}
    with _remembered_lock:
        values.update(_remembered)
    return sorted(values, key=len, reverse=True)  # longest first, so a key containing another is masked whole


def key_variables_set(environ: Mapping[str, str] | None = None) -> list[str]:
    """Names (never values) of credential-like variables that are set."""
    env = os.environ if environ is None else environ
    return sorted(k for k, v in env.items() if is_secret_name(k) and v)


def redact(text: str) -> str:
    if not text:
        return text
    for value in secret_values():
        if value in text:
            text = text.replace(value, MASK)
    for pattern in _KEY_PATTERNS:
        if pattern.groups:
            text = pattern.sub(
                lambda m: m.group(1) + MASK + (m.group(2) if m.lastindex and m.lastindex > 1 else ""), text)
        else:
            text = pattern.sub(MASK, text)
    return text


def scrub_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Params without credentials (api_key, headers with tokens...), safe to record."""
    clean: dict[str, Any] = {}
    for name, value in params.items():
        if is_secret_name(name) or name in ("extra_headers", "headers", "aws_secret_access_key"):
            continue
        clean[name] = value
    return clean
