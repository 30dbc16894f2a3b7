"""The recursive walk: a redacted copy of nested data, masked by key and by value.

Used for Sentry events, span attribute lists, log fields holding structures and
health details. The input is never mutated; cycles and runaway depth become markers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

from lightkeeper.sdk.redact.keys import is_sensitive_key
from lightkeeper.sdk.redact.mask import MASK, mask_for
from lightkeeper.sdk.redact.text import redact_str, redact_text

MAX_DEPTH: Final = 20
"""Nesting depth beyond which a structure is replaced by a marker instead of walked."""

_TOO_DEEP: Final = "[REDACTED: nested too deep]"
_CYCLE: Final = "[REDACTED: cycle]"
_UNREPRESENTABLE: Final = "[REDACTED: unrepresentable]"

SCALARS: Final[frozenset[type]] = frozenset(
    {int, float, bool, complex, type(None), Decimal, datetime, date, time, timedelta, UUID}
)
"""Types that cannot hold text: passed through unless under a sensitive key."""
_CONTAINERS: Final[frozenset[type]] = frozenset({dict, list, tuple, set, frozenset})


def sensitive(key: Any) -> bool:
    """The key rule for any mapping key: text and bytes names are judged, others are not names."""
    if isinstance(key, str):
        return is_sensitive_key(key)
    if isinstance(key, bytes | bytearray):
        return is_sensitive_key(bytes(key).decode("latin-1"))
    return False


def walk(value: Any, depth: int, ancestors: set[int]) -> Any:
    """`redact_value` below the top: `ancestors` holds the ids of the containers above."""
    cls = value.__class__
    if cls is str:
        return redact_str(value)
    if cls in SCALARS:
        return value
    if cls not in _CONTAINERS:  # exact types first: ABC isinstance checks are slow
        if isinstance(value, str):
            return redact_str(str(value))
        if isinstance(value, bytes | bytearray | memoryview):
            return _redact_bytes(bytes(value))
        if not isinstance(value, Mapping | list | tuple | set | frozenset):
            return _redact_object(value)
    if depth >= MAX_DEPTH:
        return _TOO_DEEP
    marker = id(value)
    if marker in ancestors:
        return _CYCLE
    ancestors.add(marker)
    try:
        if cls is dict or (cls not in _CONTAINERS and isinstance(value, Mapping)):
            return _walk_mapping(value, depth + 1, ancestors)
        return _walk_collection(value, depth + 1, ancestors)
    finally:
        ancestors.discard(marker)


def _walk_mapping(value: Mapping[Any, Any], depth: int, ancestors: set[int]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for key, item in value.items():
        if sensitive(key):
            out[key] = mask_for(item)
        elif item.__class__ in SCALARS:
            out[key] = item
        else:
            out[key] = walk(item, depth, ancestors)
    return out


def _walk_collection(value: Any, depth: int, ancestors: set[int]) -> Any:
    if len(value) == 2 and isinstance(value, tuple) and sensitive(value[0]):
        # A (name, value) pair, as in ASGI / httpx header lists.
        items = [walk(value[0], depth, ancestors), mask_for(value[1])]
    else:
        items = [item if item.__class__ in SCALARS else walk(item, depth, ancestors) for item in value]
    if value.__class__ is list or isinstance(value, list):
        return items
    if isinstance(value, tuple):
        make = getattr(value, "_make", None)  # namedtuple
        return make(items) if make is not None else tuple(items)
    return frozenset(items) if isinstance(value, frozenset) else set(items)


def _redact_bytes(value: bytes) -> bytes:
    # latin-1 maps every byte to one character, so decoding never fails and
    # re-encoding gives back exactly the bytes that were not masked.
    text = value.decode("latin-1")
    redacted = redact_text(text)
    return value if redacted is text else redacted.encode("latin-1")


def _redact_object(value: Any) -> Any:
    """Other objects are rendered by their repr later (JSON renderers, Sentry).

    Keep the object unless its repr shows a secret; then hand back the redacted repr.
    Exceptions land here too: ``ValueError('postgresql://u:pw@db')`` becomes text.
    """
    try:
        text = repr(value)
    except Exception:
        return _UNREPRESENTABLE
    redacted = redact_text(text)
    return value if redacted is text else redacted


def redact_value(value: Any) -> Any:
    """A redacted copy of `value`: strings scanned, containers walked, input untouched.

    Walks dicts (any Mapping), lists, tuples (namedtuples kept), sets and frozensets,
    masking by key and by value. Bytes are scanned and stay bytes. Numbers, dates and
    None pass unchanged unless under a sensitive key. A structure nested deeper than
    `MAX_DEPTH`, or containing itself, is replaced by a marker at that point.
    """
    return walk(value, 0, set())


def redact_mapping(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """`redact_value` for a mapping, always returning a new plain dict."""
    return _walk_mapping(mapping, 1, {id(mapping)})


def redact_headers(
    headers: Iterable[tuple[bytes | str, bytes | str]] | Mapping[str, str],
) -> list[tuple[str, str]]:
    """HTTP headers (ASGI raw pairs, httpx/starlette items) as text pairs, secrets masked.

    Authorization, cookies and API-key headers are masked whole; other values are
    scanned as text (a token pasted into ``X-Debug`` is still caught).
    """
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    result: list[tuple[str, str]] = []
    for name, value in pairs:
        name_text = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        value_text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        masked = MASK if is_sensitive_key(name_text) else redact_text(value_text)
        result.append((name_text, masked))
    return result
