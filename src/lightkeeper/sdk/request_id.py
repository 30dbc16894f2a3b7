"""Accept an inbound request id only when it is a sane token; otherwise mint one.

An id from the client is echoed into response headers and every log line, so an
unchecked value is a header-injection and log-forging vector (CR/LF, control bytes,
megabyte-long strings). Validation runs on the raw header bytes: no decoding, and
anything outside printable ASCII fails the pattern outright.
"""

from __future__ import annotations

import os
import re

MAX_LENGTH = 128
_SANE = re.compile(rb"[A-Za-z0-9._:+=-]{1,%d}" % MAX_LENGTH)


def new_request_id() -> str:
    """128 random bits as 32 hex characters (uuid4's entropy, a third of its cost)."""
    return os.urandom(16).hex()


def accept_or_new(raw: bytes | None) -> str:
    """The client's id when it is a sane token, else a fresh one."""
    if raw is not None and _SANE.fullmatch(raw) is not None:
        return raw.decode("ascii")
    return new_request_id()
