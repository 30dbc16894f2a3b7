"""The one replacement every redaction writes, shared by all the rule modules."""

from __future__ import annotations

from typing import Any, Final

MASK: Final = "[REDACTED]"
"""Replaces a secret whole; fixed so that no part of a secret is ever echoed."""

_NEVER_SECRET: Final[frozenset[type]] = frozenset({bool, type(None)})


def mask_for(value: Any) -> Any:
    """A sensitive key's value: booleans and None carry no secret (``password_set``)."""
    return value if type(value) in _NEVER_SECRET else MASK
