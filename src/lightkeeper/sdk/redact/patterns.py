"""Which string values look like secrets, wherever they appear in free text.

Bearer and Basic credentials, JWTs, ``sk-...`` keys, cloud and SaaS tokens, DSN
passwords, ``token=...`` / ``Cookie: ...`` pairs and PEM private keys are masked; DSNs
keep user and host and pairs keep their key, so the text stays useful for debugging.

Python's regex engine tries every alternative at every position, which costs about a
microsecond per character for a pattern with many case-insensitive branches. So each
family of secret shapes has its own expression with a literal prefix (found by the
engine's fast prefix search) and only runs when a cheap substring test says it can
match. ``key=value`` pairs are found from their separator outwards instead of by
scanning for every key name, and decided by the key rules.
"""

from __future__ import annotations

import re
from typing import Final

from lightkeeper.sdk.redact.keys import is_sensitive_key, may_name_a_secret
from lightkeeper.sdk.redact.mask import MASK

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
SQL_PLACEHOLDER: Final = re.compile(r"\$[0-9]+|%s|%\([A-Za-z0-9_]*\)s|:[A-Za-z_][A-Za-z0-9_]*|\?")
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
EMAIL: Final = re.compile(r"(?<![A-Za-z0-9_.+/%-])[A-Za-z0-9_.+%-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
"""E-mail addresses: masked only when the service asks for it (`redact_emails`)."""

HEXISH: Final = b"0123456789abcdefABCDEF.:+-TZ "
"""Hex ids, UUIDs, ISO timestamps, numbers, IPs: text made only of these bytes is safe.

Every key name and token prefix needs a letter outside a-f/T/Z, a DSN needs ``/``,
a bearer credential needs a scheme word, an e-mail ``@``."""
PATHISH: Final = b"0123456789abcdefghijklmnopqrstuvwxyz/"
"""Plain lower-case paths (``/orgs/12/items``): no separator, no upper case, no ``-_.``."""
SHORTEST_UNSEPARATED: Final = 14
"""len("Basic ") + 8: below it only a ``key=value`` / ``key: value`` pair can hold a secret."""


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
        if value is None or SQL_PLACEHOLDER.fullmatch(value[1]):
            continue
        raw = value[1]
        quote = raw[:2] if raw[:2] == '\\"' else raw[:1] if raw[:1] in "\"'" else ""
        pieces += (text[done : value.start(1)], quote, MASK, quote)
        done = value.end(1)
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


def obviously_clean(text: str) -> bool:
    """Cheap tests that settle most strings of a log event without any pattern."""
    if len(text) < SHORTEST_UNSEPARATED:
        return "=" not in text and ":" not in text
    if text.isalnum():  # ids, hashes: only AWS/Google key ids fit, and they contain "A"
        return "A" not in text
    if not text.isascii():
        return False
    # bytes.translate deleting a set is a table lookup per byte: far cheaper than a regex.
    raw = text.encode("ascii")
    return not raw.translate(None, HEXISH) or not raw.translate(None, PATHISH)


def scan(text: str) -> str:
    """Every built-in secret shape in `text` masked (a new string only when one was found)."""
    if text[:1] == "/" and "?" in text and " " not in text:
        return _scan_request_target(text)
    return _scan_free_text(text)


def _scan_request_target(text: str) -> str:
    """``/path?a=1&token=x``, the access log's ``path``: split instead of scanned.

    Each piece still gets the full scan unless it is obviously clean, so a token
    in a value under an innocent name is caught as in free text.
    """
    path, _, query = text.partition("?")
    pieces = [path if obviously_clean(path) else _scan_free_text(path)]
    for pair in query.split("&"):
        key, sep, value = pair.partition("=")
        if not sep:
            pair = key if obviously_clean(key) else _scan_free_text(key)
        elif is_sensitive_key(key):
            if value and not SQL_PLACEHOLDER.fullmatch(value):
                pair = key + sep + MASK
        else:
            if not obviously_clean(key):
                key = _scan_free_text(key)
            if not obviously_clean(value):
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
        if may_name_a_secret(lower):
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
