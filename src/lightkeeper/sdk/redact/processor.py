"""The structlog processor: every field of every log line through the shared rules.

It runs on every log line, so it remembers each key's last clean value: a field that
repeats (service, level, route, user agent...) then costs one dict lookup.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, Final

from lightkeeper.sdk.redact.keys import key_decisions
from lightkeeper.sdk.redact.mask import MASK, mask_for
from lightkeeper.sdk.redact.patterns import HEXISH, PATHISH, SHORTEST_UNSEPARATED
from lightkeeper.sdk.redact.text import CLEAN_MAX_LEN, cheap_tests_settle, redact_str
from lightkeeper.sdk.redact.walk import SCALARS, sensitive, walk

PASSTHROUGH_KEYS: Final[frozenset[str]] = frozenset({"_record", "_from_structlog"})
"""structlog's ProcessorFormatter bookkeeping: objects later processors still need."""

_UNSEEN: Final = object()
_LAST_CLEAN: dict[Any, str] = {}
"""Each key's last clean text value (never a sensitive key's): repeated fields cost one lookup."""
_LAST_CLEAN_MAX = 4096


def forget() -> None:
    """Drop the remembered values (the rules changed, so "clean" may no longer hold)."""
    _LAST_CLEAN.clear()


def structlog_processor(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog processor: mask every field of the event; place it just before the renderer.

    Top-level values are replaced in the event dict (structlog builds a new dict per
    call), nested values are copied, never mutated: the application's objects stay
    as they were. The ``event`` text is scanned for secret shapes but never masked
    because of the words it contains (``password_reset_requested`` stays readable).
    """
    seen = _LAST_CLEAN
    decided = key_decisions()
    cheap, at_matters, clean = cheap_tests_settle()
    for key, value in event_dict.items():
        if value.__class__ is str:
            # `redact_str`'s shortcuts, inlined: on the request path a call per field
            # costs more than the tests (bench/instructions.py, +8.6k instructions per
            # request with them as calls).
            try:
                last: object = seen[key]  # a subscript is cheaper than .get() on CPython 3.11+
            except KeyError:
                last = _UNSEEN
            if last is value or last == value:
                continue
            if last is _UNSEEN:  # a key found in `seen` is known not to be sensitive
                if key != "event" and sensitive(key):
                    event_dict[key] = MASK
                    continue
                if len(seen) >= _LAST_CLEAN_MAX:
                    seen.clear()
            if cheap and not (at_matters and "@" in value):
                if len(value) < SHORTEST_UNSEPARATED:
                    if "=" not in value and ":" not in value:
                        seen[key] = value
                        continue
                elif value.isalnum():  # ids: only AWS/Google key ids fit, and they hold "A"
                    if "A" not in value:
                        seen[key] = value
                        continue
                elif value in clean:
                    seen[key] = value
                    continue
                elif value.isascii():
                    raw = value.encode()
                    if not raw.translate(None, HEXISH) or not raw.translate(None, PATHISH):
                        seen[key] = value
                        continue
            redacted = redact_str(value)
            if redacted is not value:
                event_dict[key] = redacted
            elif len(value) <= CLEAN_MAX_LEN:
                seen[key] = value
            continue
        try:
            is_secret = decided[key]
        except KeyError:
            is_secret = sensitive(key)
        if is_secret:
            if key not in PASSTHROUGH_KEYS:
                event_dict[key] = mask_for(value)
        elif value.__class__ not in SCALARS and key not in PASSTHROUGH_KEYS:
            event_dict[key] = walk(value, 0, set())
    return event_dict
