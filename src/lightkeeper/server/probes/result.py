"""What one probe execution found, and the error text that incidents and notifications show."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from lightkeeper.sdk.redact import MASK, redact_text

Status = Literal["up", "down", "no_data"]

# scheme://user:password@ or scheme://user@ -> scheme:// (userinfo is never worth showing)
_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.I)
_MAX_ERROR = 500


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One execution. `ok` is True exactly when `status` is "up"; `error` is None then."""

    probe: str
    ok: bool
    status: Status
    checked_at: datetime
    latency_ms: float | None
    error: str | None
    tls_expiry_seconds: float | None = None


class ProbeFailure(Exception):
    """An assertion or connection failure; the message is already fit for a status page."""

    def __init__(
        self, message: str, *, latency_ms: float | None = None, tls_expiry_seconds: float | None = None
    ) -> None:
        super().__init__(message)
        self.latency_ms = latency_ms
        self.tls_expiry_seconds = tls_expiry_seconds


@dataclass(frozen=True, slots=True)
class Observation:
    """What an executor measured when every assertion held."""

    latency_ms: float | None
    tls_expiry_seconds: float | None = None


def clean_error(text: str, secrets: Iterable[str] = ()) -> str:
    """Error text without credentials: known secret values, URL userinfo, secret shapes.

    Known values (the resolved header and password secrets of this probe) are replaced
    first because they may have no recognisable shape; the shared redaction then catches
    whatever a library put in its message. The result is bounded for storage.
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _USERINFO.sub(r"\g<scheme>", text)
    text = redact_text(text)
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 1] + "…"
