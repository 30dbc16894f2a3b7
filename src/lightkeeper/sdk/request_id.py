"""Accept an inbound request id only when it is a sane token; otherwise mint one.

An id from the client is echoed into response headers and every log line, so an
unchecked value is a header-injection and log-forging vector (CR/LF, control bytes,
megabyte-long strings). Validation runs on the raw header bytes: no decoding, and
anything outside printable ASCII fails the pattern outright. An id shaped like a
credential (a JWT, an API key) is replaced too: clients sometimes put a token where an
id belongs, and an accepted id is written on every log line of the request. So every
id this module returns is one the redactor leaves alone, and the request line can
write it without scanning it again.
"""

from __future__ import annotations

import random
import re

from lightkeeper.sdk.redact import redact_field

MAX_LENGTH = 128
_SANE = re.compile(rb"[A-Za-z0-9._:+=-]{1,%d}" % MAX_LENGTH)


_bits = random.getrandbits


def new_request_id() -> str:
    """128 random bits as 32 hex characters.

    A request id must be unique, not unguessable (it is echoed to the client), so the
    Mersenne Twister serves instead of a `getrandom` system call per request; CPython
    reseeds it in forked children, so workers never repeat each other's ids.
    """
    # to_bytes().hex() costs a quarter of a "{:032x}" format spec, and keeps leading zeros.
    return _bits(128).to_bytes(16, "big").hex()


def accept_or_new(raw: bytes | None) -> str:
    """The client's id when it is a sane token that is not a secret, else a fresh one."""
    if raw is not None and _SANE.fullmatch(raw) is not None:
        text = raw.decode("ascii")
        if redact_field(text) == text:
            return text
    return new_request_id()
