"""Mask secrets before they reach any sink: log lines, Sentry events, span attributes,
health output.

One module so every sink applies the same rules. Two complementary tests:

* by KEY: a value whose key names a secret (``password``, ``X-Api-Key``,
  ``refreshToken``, ``AWS_SECRET_ACCESS_KEY``...) is replaced whole;
* by VALUE: free text is scanned for secret shapes (bearer tokens, JWTs, ``sk-...``
  keys, cloud and SaaS tokens, DSN passwords, ``token=...`` pairs, PEM private keys),
  so a secret pasted into an exception message or a URL is caught too.

The mask is the fixed string `MASK` and never keeps a prefix or suffix of the secret.

Key rule (see the data below): a key is sensitive when its normalised form (lower
case, separators removed) contains a fragment of `SENSITIVE_KEY_FRAGMENTS` or one of
its words is in `SENSITIVE_KEY_WORDS`, unless the key is listed in `SAFE_KEYS`, its
LAST word is in `SAFE_KEY_SUFFIXES`, or it ends in ``tokens`` after a word of
`TOKEN_COUNT_QUALIFIERS` (LLM token counts). The last word decides what the value is:
``token_count``, ``max_tokens``, ``session_duration_ms``, ``password_changed_at``
hold counts, sizes, durations or timestamps, while ``reset_token`` and ``session_id``
hold the secret itself and stay masked. Values under exempt keys are still scanned as
text, so an exemption never lets a recognisable secret through.

Cost: the structlog processor runs on every access-log line, so the common case
(short strings, ids, timestamps, strings seen before) is decided by cheap ``in``
tests and caches; a family's regular expression only runs on text that contains
its trigger (``://``, ``eyJ``, ``sk-``, a ``=``/``:`` separator...).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final
from urllib.parse import unquote_plus
from uuid import UUID

__all__ = [
    "MASK",
    "SAFE_KEYS",
    "SAFE_KEY_SUFFIXES",
    "SENSITIVE_KEY_FRAGMENTS",
    "SENSITIVE_KEY_WORDS",
    "TOKEN_COUNT_QUALIFIERS",
    "configure",
    "is_sensitive_key",
    "redact_headers",
    "redact_mapping",
    "redact_text",
    "redact_url",
    "redact_value",
    "structlog_processor",
]

MASK: Final = "[REDACTED]"
"""Replaces a secret whole; fixed so that no part of a secret is ever echoed."""

# --------------------------------------------------------------------------- data

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

PASSTHROUGH_KEYS: Final[frozenset[str]] = frozenset({"_record", "_from_structlog"})
"""structlog's ProcessorFormatter bookkeeping: objects later processors still need."""

MAX_DEPTH: Final = 20
"""Nesting depth beyond which a structure is replaced by a marker instead of walked."""

_TOO_DEEP: Final = "[REDACTED: nested too deep]"
_CYCLE: Final = "[REDACTED: cycle]"
_UNREPRESENTABLE: Final = "[REDACTED: unrepresentable]"

# ------------------------------------------------------------------ key decision

_SEPARATORS = re.compile(r"[^a-z0-9]+")
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_FRAGMENTS_NORMALISED = tuple(fragment.replace("_", "") for fragment in SENSITIVE_KEY_FRAGMENTS)
_KEY_CACHE: dict[str, bool] = {}
_KEY_CACHE_MAX = 4096


def _classify_key(key: str) -> bool:
    normalised = _SEPARATORS.sub("", key.lower())
    if not normalised or normalised in SAFE_KEYS:
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

    Decisions are cached (keys repeat on every event); the cache is bounded so
    attacker-chosen keys cannot grow it without limit.
    """
    decision = _KEY_CACHE.get(key)
    if decision is None:
        decision = _classify_key(key)
        if len(_KEY_CACHE) >= _KEY_CACHE_MAX:
            _KEY_CACHE.clear()
        _KEY_CACHE[key] = decision
    return decision


# ---------------------------------------------------------------- text patterns
#
# Python's regex engine tries every alternative at every position, which costs about
# a microsecond per character for a pattern with many case-insensitive branches. So
# each family of secret shapes has its own expression with a literal prefix (found by
# the engine's fast prefix search) and only runs when a cheap substring test says it
# can match. `key=value` pairs are found from their separator outwards instead of by
# scanning for every key name.

_PEM = re.compile(
    r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----[\s\S]*?(?:-----END[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----|\Z)"
)
_HEADER_LINE = re.compile(
    r"(?i:\b((?:set-)?cookie|(?:proxy-)?authorization))(\\?[\"']?[ \t]*:[ \t]*\\?[\"']?)[^\r\n\"'\\]+"
)
"""``Cookie: a=1; b=2`` / ``Authorization: Digest ...``: the rest of the line is the secret."""
_KEY_BEFORE_REVERSED = re.compile(r"[ \t]*[\"']?\\?([A-Za-z0-9_.-]{1,64})")
_VALUE_AFTER = re.compile(
    r"""[ \t]*(
        "[^"\r\n]*"
      | '[^'\r\n]*'
      | \\"[^"\r\n]*?\\"
      | %\([A-Za-z0-9_]*\)s
      | (?:(?i:bearer|basic|token)[ \t]+)?
        (?:[^\s&,;"'<>(){}\[\]|\\]|[&,;](?![ \t]*[A-Za-z0-9_.%\[\]-]+=)(?=\S))+
    )""",
    re.VERBOSE,
)
_SQL_PLACEHOLDER = re.compile(r"\$[0-9]+|%s|%\([A-Za-z0-9_]*\)s|:[A-Za-z_][A-Za-z0-9_]*|\?")
"""Bind parameters in logged SQL (``WHERE token = $1``): the name of a value, not the value."""
_DSN_PASSWORD = re.compile(r"://([^\s/:@?#]*):([^\s/?#]+)@")
_SCHEME_CREDENTIAL = re.compile(r"(?i:\b(bearer|basic))([ \t]+)([A-Za-z0-9._~+/-]{8,}=*)")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){1,3}")
_OPENAI_STYLE = re.compile(r"sk-[A-Za-z0-9_-]{16,}")
"""OpenAI (``sk-``, ``sk-proj-``, ``sk-svcacct-``) and Anthropic (``sk-ant-``) keys."""
_UNDERSCORE_TOKENS = re.compile(
    r"[sr]k_(?:live|test)_[A-Za-z0-9]{10,}"  # Stripe secret / restricted keys
    r"|whsec_[A-Za-z0-9+/=]{16,}"  # Stripe webhook signing secrets
    r"|gh[pousr]_[A-Za-z0-9]{30,}"  # GitHub classic, OAuth, app tokens
    r"|github_pat_[A-Za-z0-9_]{20,}"  # GitHub fine-grained tokens
)
_UNDERSCORE_TRIGGERS = ("k_live_", "k_test_", "whsec_", "hp_", "ho_", "hu_", "hs_", "hr_", "github_pat_")
_CLOUD_KEYS = re.compile(r"(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])|AIza[0-9A-Za-z_-]{35}")
"""AWS access key ids (long-term ``AKIA``, temporary ``ASIA``) and Google API keys."""
_SLACK = re.compile(r"xox[abposr]-[A-Za-z0-9-]{10,}")
_EMAIL = re.compile(r"(?<![A-Za-z0-9_.+/%-])[A-Za-z0-9_.+%-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")

_HEXISH: Final = b"0123456789abcdefABCDEF.:+-TZ "
"""Hex ids, UUIDs, ISO timestamps, numbers, IPs: text made only of these bytes is safe.

Every key name and token prefix needs a letter outside a-f/T/Z, a DSN needs ``/``,
a bearer credential needs a scheme word, an e-mail ``@``."""
_PATHISH: Final = b"0123456789abcdefghijklmnopqrstuvwxyz/"
"""Plain lower-case paths (``/orgs/12/items``): no separator, no upper case, no ``-_.``."""
_SHORTEST_UNSEPARATED = 14  # len("Basic ") + 8: below it only "key=value"/"key: value" fits

_redact_emails = False


def _looks_random(text: str) -> bool:
    """At least two of digits / upper / lower: keys are random, prose is not."""
    digit = any(c.isdigit() for c in text)
    upper = any(c.isupper() for c in text)
    lower = any(c.islower() for c in text)
    return digit + upper + lower >= 2


def _glued(text: str, start: int) -> bool:
    """A prefix like ``sk-`` inside a word (``task-``, ``risk_live``) is not a key."""
    return start > 0 and text[start - 1].isalnum()


def _mask_whole(match: re.Match[str]) -> str:
    return match[0] if _glued(match.string, match.start()) else MASK


def _mask_openai(match: re.Match[str]) -> str:
    if _glued(match.string, match.start()) or not _looks_random(match[0][3:]):
        return match[0]  # "sk-learn-compatible-estimator" is prose
    return MASK


def _mask_credential(match: re.Match[str]) -> str:
    if not _looks_random(match[3]):
        return match[0]  # "Basic authentication", "bearer tokenization"
    return match[1] + match[2] + MASK


def _mask_dsn(match: re.Match[str]) -> str:
    return f"://{match[1]}:{MASK}@"


def _mask_header_line(match: re.Match[str]) -> str:
    return match[1] + match[2] + MASK


_KEY_ANCHORS: Final = (
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
"""Every sensitive key, however spelled, contains one of these (a unit test checks it).

Text without any of them cannot hold a sensitive ``key=value`` pair, which spares
the per-separator work on most messages."""


def _may_name_a_secret(lower: str) -> bool:
    return any(anchor in lower for anchor in _KEY_ANCHORS)


def _separators(text: str) -> list[int]:
    found = []
    for sep in "=:":
        at = text.find(sep)
        while at != -1:
            found.append(at)
            at = text.find(sep, at + 1)
    found.sort()
    return found


def _mask_pairs(text: str) -> str:
    """Mask the value of every ``key=value`` / ``key: value`` whose key is sensitive.

    Works outwards from each separator: read the key backwards, decide with
    `is_sensitive_key` (so text follows exactly the key rules), then read the value.
    """
    pieces: list[str] = []
    done = 0
    for at in _separators(text):
        if at < done:
            continue  # inside a value already masked
        key = _KEY_BEFORE_REVERSED.match(text[max(0, at - 68) : at][::-1])
        if key is None or not is_sensitive_key(key[1][::-1]):
            continue
        value = _VALUE_AFTER.match(text, at + 1)
        if value is None or _SQL_PLACEHOLDER.fullmatch(value[1]):
            continue
        raw = value[1]
        quote = raw[:2] if raw[:2] == '\\"' else raw[:1] if raw[:1] in "\"'" else ""
        pieces += (text[done : value.start(1)], quote, MASK, quote)
        done = value.end(1)
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


def _obviously_clean(text: str) -> bool:
    """Cheap tests that settle most strings of a log event without any pattern."""
    if len(text) < _SHORTEST_UNSEPARATED:
        return "=" not in text and ":" not in text
    if text.isalnum():  # ids, hashes: only AWS/Google key ids fit, and they contain "A"
        return "A" not in text
    return _safe_shape(text)


def _safe_shape(text: str) -> bool:
    # bytes.translate deleting a set is a table lookup per byte: far cheaper than a regex.
    if not text.isascii():
        return False
    raw = text.encode("ascii")
    return not raw.translate(None, _HEXISH) or not raw.translate(None, _PATHISH)


def _scan(text: str) -> str:
    if text[:1] == "/" and "?" in text and " " not in text:
        return _scan_request_target(text)
    return _scan_free_text(text)


def _scan_request_target(text: str) -> str:
    """``/path?a=1&token=x``, the access log's ``path``: split instead of scanned.

    Each piece still gets the full scan unless it is obviously clean, so a token
    in a value under an innocent name is caught as in free text.
    """
    path, _, query = text.partition("?")
    pieces = [path if _obviously_clean(path) else _scan_free_text(path)]
    for pair in query.split("&"):
        key, sep, value = pair.partition("=")
        if not sep:
            pair = key if _obviously_clean(key) else _scan_free_text(key)
        elif is_sensitive_key(key):
            if value and not _SQL_PLACEHOLDER.fullmatch(value):
                pair = key + sep + MASK
        else:
            if not _obviously_clean(key):
                key = _scan_free_text(key)
            if not _obviously_clean(value):
                value = _scan_free_text(value)
            pair = key + sep + value
        pieces.append(pair)
    return pieces[0] + "?" + "&".join(pieces[1:])


def _scan_free_text(text: str) -> str:
    if "-----BEGIN" in text:
        text = _PEM.sub(MASK, text)
    lower = text.lower()
    if ":" in text or "=" in text:
        if "cookie" in lower or "authorization" in lower:
            text = _HEADER_LINE.sub(_mask_header_line, text)
        if _may_name_a_secret(lower):
            text = _mask_pairs(text)
        if "://" in text:
            text = _DSN_PASSWORD.sub(_mask_dsn, text)
    if "bearer" in lower or "basic" in lower:
        text = _SCHEME_CREDENTIAL.sub(_mask_credential, text)
    if "eyJ" in text:
        text = _JWT.sub(MASK, text)
    if "-" in text:
        if "sk-" in text:
            text = _OPENAI_STYLE.sub(_mask_openai, text)
        if "xox" in text:
            text = _SLACK.sub(MASK, text)
    if "_" in text and any(trigger in text for trigger in _UNDERSCORE_TRIGGERS):
        text = _UNDERSCORE_TOKENS.sub(_mask_whole, text)
    if "A" in text and ("AKIA" in text or "ASIA" in text or "AIza" in text):
        text = _CLOUD_KEYS.sub(_mask_whole, text)
    return text


def redact_text(text: str) -> str:
    """Mask every secret shape found in free text (messages, exception text, URLs).

    DSNs keep user and host (``postgresql://app:[REDACTED]@db/app``) and
    ``key=value`` pairs keep the key, so the text stays useful for debugging.
    Returns `text` itself when nothing was found.
    """
    if not isinstance(text, str):  # a careless caller must not crash the log pipeline
        text = str(text)
    result = text if _obviously_clean(text) else _scan(text)
    if _redact_emails and "@" in result:
        result = _EMAIL.sub(MASK, result)
    # `re.sub` returns a new object whenever a candidate matched, even if kept as is.
    return text if result == text else result


# ---------------------------------------------------------------- known-clean cache

_CLEAN: set[str] = set()
_CLEAN_MAX = 4096
_CLEAN_MAX_LEN = 512


def _redact_str(text: str) -> str:
    """`redact_text` plus a bounded cache of strings already found clean by a full scan.

    Repeated values (user agents, routes, messages) then cost one set lookup. Only
    strings with nothing to mask are remembered, so the cache never holds a secret;
    strings the cheap tests settle are not remembered, so unique ids do not churn it.
    """
    if text in _CLEAN:
        return text
    if _obviously_clean(text) and not (_redact_emails and "@" in text):
        return text
    return _scan_and_remember(text)


FIELDS_SEEN_CLEAN: Final[set[str]] = set()
"""Request-line values (paths, user agents, client addresses) already found clean.

Unlike `_CLEAN`, this also keeps values the cheap tests settle: a path or an address
repeats on every request, and one set lookup is cheaper than settling it again. The
request hot path tests membership itself before calling `redact_field`. Only clean
values are kept, so it never holds a secret; it is emptied when it fills and when
the options change (never rebound, so a reference to it stays valid).
"""


def redact_field(text: str) -> str:
    """`redact_text` for short values that repeat (paths, user agents, addresses)."""
    if text in FIELDS_SEEN_CLEAN:
        return text
    result = _redact_str(text)
    if result == text and len(text) <= _CLEAN_MAX_LEN:
        if len(FIELDS_SEEN_CLEAN) >= _CLEAN_MAX:
            FIELDS_SEEN_CLEAN.clear()
        FIELDS_SEEN_CLEAN.add(text)
        return text
    return result


def _scan_and_remember(text: str) -> str:
    result = _scan(text)
    if _redact_emails and "@" in result:
        result = _EMAIL.sub(MASK, result)
    if result == text:
        if len(text) <= _CLEAN_MAX_LEN:
            if len(_CLEAN) >= _CLEAN_MAX:
                _CLEAN.clear()
            _CLEAN.add(text)
        return text
    return result


_UNSEEN: Final = object()
_LAST_CLEAN: dict[Any, str] = {}
"""The structlog processor's last clean value per key (never for a sensitive key)."""


def configure(*, redact_emails: bool = False) -> None:
    """Process-wide options, set once at start-up by whoever owns the settings.

    `redact_emails` also masks e-mail addresses in all text (off by default:
    addresses are often the identifier an operator needs). Changing an option
    forgets every string remembered as clean under the previous one.
    """
    global _redact_emails
    _redact_emails = redact_emails
    _CLEAN.clear()
    _LAST_CLEAN.clear()
    FIELDS_SEEN_CLEAN.clear()
    for forget in _forgetters:
        forget()


_forgetters: list[Callable[[], None]] = []


def on_reconfigure(forget: Callable[[], None]) -> None:
    """Register (once, at import) a callback that drops what a caller remembered as clean."""
    if forget not in _forgetters:
        _forgetters.append(forget)


# ------------------------------------------------------------------ structures

_SCALARS: Final[frozenset[type]] = frozenset(
    {int, float, bool, complex, type(None), Decimal, datetime, date, time, timedelta, UUID}
)
"""Types that cannot hold text: passed through unless under a sensitive key."""
_NEVER_SECRET: Final[frozenset[type]] = frozenset({bool, type(None)})


def _mask_for(value: Any) -> Any:
    """A sensitive key's value: booleans and None carry no secret (``password_set``)."""
    return value if type(value) in _NEVER_SECRET else MASK


def _sensitive(key: Any) -> bool:
    if key.__class__ is str:
        decision = _KEY_CACHE.get(key)
        return is_sensitive_key(key) if decision is None else decision
    if isinstance(key, str):
        return is_sensitive_key(key)
    if isinstance(key, bytes | bytearray):
        return is_sensitive_key(bytes(key).decode("latin-1"))
    return False


_CONTAINERS: Final[frozenset[type]] = frozenset({dict, list, tuple, set, frozenset})


def _walk(value: Any, depth: int, ancestors: set[int]) -> Any:
    cls = value.__class__
    if cls is str:
        return _redact_str(value)
    if cls in _SCALARS:
        return value
    if cls not in _CONTAINERS:  # exact types first: ABC isinstance checks are slow
        if isinstance(value, str):
            return _redact_str(str(value))
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
    scalars = _SCALARS
    keys = _KEY_CACHE
    shortest = _SHORTEST_UNSEPARATED
    for key, item in value.items():
        if key.__class__ is str:
            sensitive = keys.get(key)
            if sensitive is None:
                sensitive = is_sensitive_key(key)
        else:
            sensitive = _sensitive(key)
        cls = item.__class__
        if sensitive:
            out[key] = _mask_for(item)
        elif cls in scalars:
            out[key] = item
        elif cls is str:
            if len(item) < shortest and "=" not in item and ":" not in item and not _redact_emails:
                out[key] = item
            else:
                out[key] = _redact_str(item)
        else:
            out[key] = _walk(item, depth, ancestors)
    return out


def _walk_collection(value: Any, depth: int, ancestors: set[int]) -> Any:
    scalars = _SCALARS
    if len(value) == 2 and isinstance(value, tuple) and _sensitive(value[0]):
        # A (name, value) pair, as in ASGI / httpx header lists.
        items = [_walk(value[0], depth, ancestors), _mask_for(value[1])]
    else:
        items = [
            item
            if item.__class__ in scalars
            else _redact_str(item)
            if item.__class__ is str
            else _walk(item, depth, ancestors)
            for item in value
        ]
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
    return _walk(value, 0, set())


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


def _redact_pairs(query: str) -> str:
    parts = []
    for pair in query.split("&"):
        key, sep, value = pair.partition("=")
        if value and (is_sensitive_key(unquote_plus(key)) or _text_changed(unquote_plus(value))):
            value = MASK
        elif not sep:
            key = redact_text(key)
        parts.append(key + sep + value)
    return "&".join(parts)


def _text_changed(text: str) -> bool:
    return redact_text(text) is not text


def redact_url(url: str) -> str:
    """Mask the password of the userinfo and sensitive query/fragment parameters.

    ``https://u:pw@host/p?token=t&page=2`` -> ``https://u:[REDACTED]@host/p?token=[REDACTED]&page=2``;
    user, host, path and other parameters are kept byte for byte. The fragment is
    treated like a query (OAuth puts ``access_token`` there).
    """
    head, hash_sep, fragment = url.partition("#")
    base, query_sep, query = head.partition("?")
    authority_start = base.find("://")
    if authority_start != -1:
        authority_start += 3
        path_start = base.find("/", authority_start)
        if path_start == -1:
            path_start = len(base)
        authority = base[authority_start:path_start]
        if "@" in authority:
            userinfo, _, host = authority.rpartition("@")
            user, colon, _password = userinfo.partition(":")
            authority = f"{redact_text(user)}{colon}{MASK if colon else ''}@{host}"
        base = base[:authority_start] + authority + redact_text(base[path_start:])
    else:
        base = redact_text(base)
    if query_sep:
        query = _redact_pairs(query)
    if hash_sep:
        fragment = _redact_pairs(fragment) if "=" in fragment else redact_text(fragment)
    return base + query_sep + query + hash_sep + fragment


# ------------------------------------------------------------------- structlog


def structlog_processor(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog processor: mask every field of the event; place it just before the renderer.

    Top-level values are replaced in the event dict (structlog builds a new dict per
    call), nested values are copied, never mutated: the application's objects stay
    as they were. The ``event`` text is scanned for secret shapes but never masked
    because of the words it contains (``password_reset_requested`` stays readable).
    """
    seen = _LAST_CLEAN
    keys = _KEY_CACHE
    clean = _CLEAN
    scalars = _SCALARS
    hexish, pathish = _HEXISH, _PATHISH
    shortest = _SHORTEST_UNSEPARATED
    at_matters = _redact_emails
    for key, value in event_dict.items():
        if value.__class__ is str:
            # Decided inline, cheapest test first: on this hot path a function call
            # costs more than most of the checks. `seen` holds the key's last clean
            # value, so a repeated field (service, level, route, user_agent...) costs
            # one lookup, and a key found there is known not to be sensitive.
            last: object
            try:
                last = seen[key]  # a subscript is cheaper than .get() on CPython 3.11+
            except KeyError:
                last = _UNSEEN
            if last is value or last == value:
                continue
            if last is _UNSEEN:
                try:
                    sensitive = keys[key]
                except KeyError:
                    sensitive = is_sensitive_key(key) if isinstance(key, str) else False
                if sensitive and key != "event":
                    event_dict[key] = MASK
                    continue
                if len(seen) >= _KEY_CACHE_MAX:
                    seen.clear()
            if at_matters and "@" in value:
                pass
            elif len(value) < shortest:
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
                if not raw.translate(None, hexish) or not raw.translate(None, pathish):
                    seen[key] = value
                    continue
            redacted = _scan_and_remember(value)
            if redacted is not value:
                event_dict[key] = redacted
            elif len(value) <= _CLEAN_MAX_LEN:
                seen[key] = value
            continue
        try:
            sensitive = keys[key]
        except KeyError:
            sensitive = is_sensitive_key(key) if isinstance(key, str) else False
        if sensitive:
            if key not in PASSTHROUGH_KEYS:
                event_dict[key] = _mask_for(value)
        elif value.__class__ in scalars or key in PASSTHROUGH_KEYS:
            continue
        else:
            event_dict[key] = _walk(value, 0, set())
    return event_dict
