"""Redaction of one string: the built-in patterns, the service's own patterns, and the
caches that make repeated strings cheap.

Only strings with nothing to mask are ever remembered, so no cache here holds a
secret; `configure` empties them whenever the rules change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from lightkeeper.sdk.redact.mask import MASK
from lightkeeper.sdk.redact.patterns import EMAIL, obviously_clean, scan

_emails = False
_custom: tuple[re.Pattern[str], ...] = ()
_cheap_tests_apply = True
"""False when a custom key can hide in text the cheap tests call clean (see `configure_text`)."""

_CLEAN: set[str] = set()
"""Strings a full scan found clean: repeated values (user agents, routes, messages) then
cost one set lookup. Strings the cheap tests settle are not kept, so unique ids do not churn it."""
_CLEAN_MAX = 4096
CLEAN_MAX_LEN: Final = 512

FIELDS_SEEN_CLEAN: Final[set[str]] = set()
"""Request-line values (paths, user agents, client addresses) already found clean.

Unlike `_CLEAN`, this also keeps values the cheap tests settle: a path or an address
repeats on every request, and one set lookup is cheaper than settling it again. The
request hot path tests membership itself before calling `redact_field`. Emptied when
it fills and when the rules change (never rebound, so a reference to it stays valid).
"""


def custom_patterns(patterns: Iterable[str]) -> tuple[re.Pattern[str], ...]:
    """Compiled custom patterns; ValueError names the unusable entry (never echoes it)."""
    compiled: list[re.Pattern[str]] = []
    for position, pattern in enumerate(patterns, 1):
        try:
            regex = re.compile(pattern)
        except (re.error, TypeError) as exc:
            raise ValueError(f"entry {position} is not a valid regular expression: {exc}") from None
        if regex.fullmatch(""):
            raise ValueError(
                f"entry {position} matches the empty string, so it would mask between every character"
            )
        compiled.append(regex)
    return tuple(compiled)


def configure_text(*, redact_emails: bool, patterns: Iterable[str], hex_only_custom_key: bool) -> None:
    """Set the text options (see `lightkeeper.sdk.redact.configure`) and forget clean strings.

    `hex_only_custom_key`: a custom key written only with hex digits (``cafe``) can
    hide in text the cheap hex test calls clean, so every string gets the full scan.
    """
    global _emails, _custom, _cheap_tests_apply
    _custom = custom_patterns(patterns)
    _emails = redact_emails
    _cheap_tests_apply = not hex_only_custom_key
    _CLEAN.clear()
    FIELDS_SEEN_CLEAN.clear()


def cheap_tests_settle() -> tuple[bool, bool, set[str]]:
    """What a caller inlining `redact_str`'s shortcuts needs: whether the cheap tests may
    settle a string, whether an ``@`` disqualifies them, and the known-clean set."""
    return _cheap_tests_apply and not _custom, _emails, _CLEAN


def _own_rules(text: str) -> str:
    if _emails and "@" in text:
        text = EMAIL.sub(MASK, text)
    for pattern in _custom:
        text = pattern.sub(MASK, text)
    return text


def _cheaply_clean(text: str) -> bool:
    # custom patterns can match anything, so they disable the shortcut too
    return _cheap_tests_apply and not _custom and obviously_clean(text) and not (_emails and "@" in text)


def redact_text(text: str) -> str:
    """Mask every secret shape found in free text (messages, exception text, URLs).

    Returns `text` itself when nothing was found.
    """
    if not isinstance(text, str):  # a careless caller must not crash the log pipeline
        text = str(text)
    result = text if _cheap_tests_apply and obviously_clean(text) else scan(text)
    if _emails or _custom:
        result = _own_rules(result)
    # `re.sub` returns a new object whenever a candidate matched, even if kept as is.
    return text if result == text else result


def redact_str(text: str) -> str:
    """`redact_text` for an exact str, remembering strings a full scan found clean."""
    if text in _CLEAN or _cheaply_clean(text):
        return text
    result = redact_text(text)
    if result is text and len(text) <= CLEAN_MAX_LEN:
        if len(_CLEAN) >= _CLEAN_MAX:
            _CLEAN.clear()
        _CLEAN.add(text)
    return result


def redact_field(text: str) -> str:
    """`redact_text` for short values that repeat (paths, user agents, addresses)."""
    if text in FIELDS_SEEN_CLEAN:
        return text
    result = redact_str(text)
    if result is text and len(text) <= CLEAN_MAX_LEN:
        if len(FIELDS_SEEN_CLEAN) >= _CLEAN_MAX:
            FIELDS_SEEN_CLEAN.clear()
        FIELDS_SEEN_CLEAN.add(text)
    return result
