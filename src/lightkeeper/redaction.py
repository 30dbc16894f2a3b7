"""The redaction every Lightkeeper sink applies (log lines, Sentry events, span
attributes, health output), for a service's own code to use and extend.

    from lightkeeper import redaction

    lightkeeper.instrument(app, redact_keys=["x-tenant-ref"], redact_patterns=[r"ACME-[0-9]{8}"])
    log.info("sync", payload=redaction.redact(payload))  # structlog lines are redacted anyway

Secrets are found by key (``password``, ``X-Api-Key``, ``refreshToken``... and the
service's `redact_keys`) and by value (bearer tokens, JWTs, ``sk-...`` keys, DSN
passwords, ``token=...`` pairs, PEM keys... and the service's `redact_patterns`), and
replaced whole by `MASK`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from lightkeeper.sdk import redact as _redact
from lightkeeper.sdk.redact import structlog_processor

__all__ = [
    "MASK",
    "configure",
    "is_secret_key",
    "redact",
    "redact_headers",
    "redact_text",
    "redact_url",
    "structlog_processor",
]

MASK: Final = _redact.MASK
"""What every secret is replaced by: a fixed string, so no part of a secret is echoed."""


def redact(value: Any) -> Any:
    """A copy of `value` with every secret masked; the input is never modified.

    Dicts (any mapping), lists, tuples, sets and bytes are walked, masking by key and
    by value; numbers, dates and None pass unchanged unless under a secret key. An
    object whose repr shows a secret comes back as its redacted repr.
    """
    return _redact.redact_value(value)


def redact_text(text: str) -> str:
    """`text` with every secret shape masked (``postgresql://app:[REDACTED]@db/app``).

    Returns `text` itself when nothing was found, so ``is`` tells whether it changed.
    """
    return _redact.redact_text(text)


def redact_url(url: str) -> str:
    """`url` with the userinfo password and secret query or fragment parameters masked."""
    return _redact.redact_url(url)


def redact_headers(
    headers: Iterable[tuple[bytes | str, bytes | str]] | Mapping[str, str],
) -> list[tuple[str, str]]:
    """HTTP headers as text pairs: Authorization, cookies and API-key headers masked whole."""
    return _redact.redact_headers(headers)


def is_secret_key(key: str) -> bool:
    """Whether a value stored under `key` is masked whatever it looks like."""
    return _redact.is_sensitive_key(key)


def configure(*, keys: Iterable[str] = (), patterns: Iterable[str] = (), redact_emails: bool = False) -> None:
    """Set the service's own rules for this process, replacing the previous ones.

    `instrument()` calls this with the ``redact_keys``, ``redact_patterns`` and
    ``redact_emails`` settings, so a service normally sets them there (or through
    ``LIGHTKEEPER_REDACT_KEYS`` / ``LIGHTKEEPER_REDACT_PATTERNS``); call it directly
    in a process that never calls `instrument()`. `keys` match like the built-in
    names: any case, any separators, also inside a longer name (``tenant_ref``
    masks ``X-Tenant-Ref`` and ``billing.tenantRef``). Each match of a pattern is
    masked in all text. Raises ValueError, changing nothing, for a key without a
    letter or digit, an invalid pattern, or one that matches the empty string.
    """
    _redact.configure(redact_emails=redact_emails, keys=keys, patterns=patterns)
