"""Accept an inbound request id only when it is a sane token; otherwise mint one.

An id from the client is echoed into response headers and every log line, so an
unchecked value is a header-injection and log-forging vector (CR/LF, control bytes,
megabyte-long strings). Validation runs on the raw header bytes: no decoding, and
anything outside printable ASCII fails the pattern outright.
"""

from __future__ import annotations

import random
import re

MAX_LENGTH = 128
_SANE = re.compile(rb"[A-Za-z0-9._:+=-]{1,%d}" % MAX_LENGTH)


_bits = random.getrandbits


def new_request_id() -> str:
    """128 random bits as 32 hex characters.

    A request id must be unique, not unguessable (it is echoed to the client), so the
    Mersenne Twister serves instead of a `getrandom` system call per request; CPython
    reseeds it in forked children, so workers never repeat each other's ids.
    """
    return f"{_bits(128):032x}"


def accept_or_new(raw: bytes | None) -> str:
    """The client's id when it is a sane token, else a fresh one."""
    if raw is not None and _SANE.fullmatch(raw) is not None:
        return raw.decode("ascii")
    return new_request_id()
