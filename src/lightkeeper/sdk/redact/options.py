"""The service's redaction options, set once at start-up, and the caches they invalidate."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from lightkeeper.sdk.redact import keys as key_rules
from lightkeeper.sdk.redact import processor, text

_forgetters: list[Callable[[], None]] = []

_HEX = frozenset("0123456789abcdef")


def configure(*, redact_emails: bool = False, keys: Iterable[str] = (), patterns: Iterable[str] = ()) -> None:
    """Replace the whole configuration; called by `instrument()` with its settings.

    `redact_emails` also masks e-mail addresses in all text (off by default:
    addresses are often the identifier an operator needs). `keys` are the service's
    own sensitive key names (matched like the built-in ones: any case, any
    separators, also inside longer names); `patterns` are regular expressions whose
    matches are masked in all text. Raises ValueError naming an unusable entry, and
    then changes nothing. Every string remembered as clean under the previous
    options is forgotten.
    """
    custom_keys = key_rules.custom_keys(keys)
    pattern_list = list(patterns)
    text.custom_patterns(pattern_list)  # validate before changing anything
    key_rules.set_custom_keys(custom_keys)
    text.configure_text(
        redact_emails=redact_emails,
        patterns=pattern_list,
        hex_only_custom_key=any(set(key) <= _HEX for key in custom_keys),
    )
    processor.forget()
    for forget in _forgetters:
        forget()


def on_reconfigure(forget: Callable[[], None]) -> None:
    """Register (once, at import) a callback that drops what a caller remembered as clean."""
    if forget not in _forgetters:
        _forgetters.append(forget)
