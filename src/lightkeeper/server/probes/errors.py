"""Turn library exceptions into one short sentence a status page reader understands."""

from __future__ import annotations

import socket
import ssl


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def describe(exc: BaseException, target: str) -> str:
    """The most specific cause found along the exception chain (the caller redacts it)."""
    for cause in _chain(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate of {target} not trusted: {cause.verify_message or cause.reason}"
        if isinstance(cause, ConnectionRefusedError):
            return f"connection refused by {target}"
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve the host of {target} ({cause.strerror})"
        if isinstance(cause, ssl.SSLError):
            return f"TLS handshake with {target} failed: {cause.reason or cause}"
    text = str(exc).strip() or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}" if text != exc.__class__.__name__ else text
