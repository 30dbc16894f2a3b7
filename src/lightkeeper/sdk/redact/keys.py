"""Which key names hold secrets: the value under such a key is masked whatever it looks like.

A key is sensitive when its normalised form (lower case, separators removed) contains
a fragment of `SENSITIVE_KEY_FRAGMENTS` or one of its words is in `SENSITIVE_KEY_WORDS`,
unless the key is listed in `SAFE_KEYS`, its LAST word is in `SAFE_KEY_SUFFIXES`, or it
ends in ``tokens`` after a word of `TOKEN_COUNT_QUALIFIERS` (LLM token counts). The
last word decides what the value is: ``token_count``, ``max_tokens``,
``session_duration_ms``, ``password_changed_at`` hold counts, sizes, durations or
timestamps, while ``reset_token`` and ``session_id`` hold the secret itself.

Keys a service adds (`set_custom_keys`) match like the fragments, and before the
exemptions: a name the operator declared secret is masked in every spelling.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

SENSITIVE_KEY_FRAGMENTS: Final[tuple[str, ...]] = (
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "token",
    "api_key",
    "access_key",
    "private_key",
    "signing_key",
    "encryption_key",
    "master_key",
    "session",
    "sessid",
    "credential",
    "authorization",
    "cookie",
    "bearer",
    "jwt",
    "csrf",
    "xsrf",
    "signature",
    "card_number",
)
"""Substrings of a key that mark its value as a secret.

Matched against the key in lower case with every separator removed, so
``db_password``, ``X-Api-Key``, ``refreshToken`` and ``AWS_SECRET_ACCESS_KEY`` all
match (entries are written with underscores for readability only)."""

SENSITIVE_KEY_WORDS: Final[frozenset[str]] = frozenset(
    {"auth", "pass", "pin", "otp", "totp", "sid", "dsn", "ssn", "cvv", "cvc", "sig"}
)
"""Short names that are secrets only as a whole word of the key.

As substrings they would hit ordinary words (``author``, ``passport``, ``opinion``,
``consider``), so ``auth``/``basic_auth``/``connect.sid`` match but ``author`` does not."""

SAFE_KEYS: Final[frozenset[str]] = frozenset(
    {
        # LLM usage fields (also covered by SAFE_KEY_SUFFIXES; listed so the audit is easy)
        "tokencount",
        "tokenscount",
        "tokensused",
        "maxtokens",
        "prompttokens",
        "completiontokens",
        "totaltokens",
        "inputtokens",
        "outputtokens",
        "cachedtokens",
        "reasoningtokens",
        "tokenizer",
        "tokenizers",
        # ordinary words that contain a fragment
        "secretary",
        "secretariat",
        "sessionless",
        "cookiecutter",
        "nosession",
    }
)
"""Known-safe keys, in normalised form (lower case, no separators): never masked by key."""

SAFE_KEY_SUFFIXES: Final[frozenset[str]] = frozenset(
    {
        # counts and sizes
        "count",
        "counts",
        "total",
        "num",
        "used",
        "usage",
        "limit",
        "limits",
        "max",
        "min",
        "remaining",
        "length",
        "len",
        "size",
        "sessions",
        # time
        "ttl",
        "expires",
        "expiry",
        "expiration",
        "expired",
        "duration",
        "ms",
        "seconds",
        "at",
        "in",
        # events about the secret, not the secret
        "reset",
        "changed",
        "updated",
        "created",
        "rotated",
        "requested",
        "required",
        "enabled",
        "disabled",
        "valid",
        "invalid",
        "strength",
        "policy",
        # descriptions of the secret
        "type",
        "kind",
        "name",
        "version",
        "algorithm",
        "method",
        "provider",
        "scheme",
        "mode",
        "status",
        "state",
        "url",
        "uri",
        "endpoint",
        "host",
    }
)
"""Last words that make a key describe a secret rather than hold it.

``token_count``, ``max_tokens``, ``session_duration_ms``, ``password_changed_at``,
``token_type``, ``auth_provider`` pass; ``reset_token``, ``session_id`` and
``api_key_hash`` do not, because their last word names the secret itself."""

TOKEN_COUNT_QUALIFIERS: Final[frozenset[str]] = frozenset(
    {
        "prompt",
        "completion",
        "total",
        "max",
        "input",
        "output",
        "cached",
        "cache",
        "reasoning",
        "audio",
        "text",
        "image",
        "prediction",
        "context",
        "embedding",
        "usage",
    }
)
"""Words before a final ``tokens`` that make the key an LLM token count.

``prompt_tokens``, ``gen_ai.usage.output_tokens``, ``cache_read_input_tokens`` (and a
bare ``tokens``) are counts; ``refresh_tokens`` or ``api_tokens`` hold credentials."""

KEY_ANCHORS: Final[tuple[str, ...]] = (
    "token",
    "key",
    "pass",
    "secret",
    "auth",
    "sess",
    "cookie",
    "credential",
    "pwd",
    "bearer",
    "jwt",
    "csrf",
    "xsrf",
    "sig",
    "card",
    "pin",
    "otp",
    "sid",
    "dsn",
    "ssn",
    "cvv",
    "cvc",
)
"""Every built-in sensitive key, however spelled, contains one of these (a unit test checks it).

Text without any of them (or a custom key) cannot hold a sensitive ``key=value`` pair,
which spares the per-separator work on most messages."""

_SEPARATORS = re.compile(r"[^a-z0-9]+")
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_FRAGMENTS_NORMALISED = tuple(fragment.replace("_", "") for fragment in SENSITIVE_KEY_FRAGMENTS)
_custom: tuple[str, ...] = ()

_KEY_CACHE: dict[str, bool] = {}
"""Decisions by key: keys repeat on every event and classifying one takes two regexes."""
_KEY_CACHE_MAX = 4096


def normalise(key: str) -> str:
    """The form rules compare: lower case, every separator removed (``X-Api-Key`` -> ``xapikey``)."""
    return _SEPARATORS.sub("", key.lower())


def _classify_key(key: str) -> bool:
    normalised = normalise(key)
    if not normalised:
        return False
    if _custom and any(custom in normalised for custom in _custom):
        return True
    if normalised in SAFE_KEYS:
        return False
    words = [word.lower() for word in _WORDS.findall(key)]
    if words and words[-1] in SAFE_KEY_SUFFIXES:
        return False
    if words[-1:] == ["tokens"] and (len(words) == 1 or words[-2] in TOKEN_COUNT_QUALIFIERS):
        return False
    if normalised in SENSITIVE_KEY_WORDS or any(word in SENSITIVE_KEY_WORDS for word in words):
        return True
    return any(fragment in normalised for fragment in _FRAGMENTS_NORMALISED)


def is_sensitive_key(key: str) -> bool:
    """Whether the value stored under `key` must be masked whatever it looks like.

    The decision cache is bounded so attacker-chosen keys cannot grow it without limit.
    """
    decision = _KEY_CACHE.get(key)
    if decision is None:
        decision = _classify_key(key)
        if len(_KEY_CACHE) >= _KEY_CACHE_MAX:
            _KEY_CACHE.clear()
        _KEY_CACHE[key] = decision
    return decision


def key_decisions() -> dict[str, bool]:
    """The decision cache itself (never rebound), for a hot loop that looks keys up inline."""
    return _KEY_CACHE


def may_name_a_secret(lower: str) -> bool:
    """Whether lower-case text can contain a sensitive key, so its pairs are worth reading."""
    if any(anchor in lower for anchor in KEY_ANCHORS):
        return True
    if not _custom:
        return False
    squeezed = _SEPARATORS.sub("", lower)
    return any(custom in squeezed for custom in _custom)


def custom_keys(keys: Iterable[str]) -> tuple[str, ...]:
    """Validated, normalised custom keys; ValueError names the unusable entry."""
    found: list[str] = []
    for position, key in enumerate(keys, 1):
        normalised = normalise(key) if isinstance(key, str) else ""
        if not normalised:
            # normalised to "" it would be contained in every key and mask everything
            raise ValueError(f"entry {position} has no letter or digit, so it would match every key")
        if normalised not in found:
            found.append(normalised)
    return tuple(found)


def set_custom_keys(keys: Iterable[str]) -> None:
    """Replace the service's own sensitive keys; decisions taken under the old set are dropped."""
    global _custom
    _custom = custom_keys(keys)
    _KEY_CACHE.clear()
