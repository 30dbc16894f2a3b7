"""Mask secrets before they reach any sink: log lines, Sentry events, span attributes,
health output. One package, so every sink applies the same rules.

Two complementary tests, each in the module named after it:

* `keys`: a value whose key names a secret (``password``, ``X-Api-Key``,
  ``refreshToken``, ``AWS_SECRET_ACCESS_KEY``, or a key the service added) is
  replaced whole;
* `patterns`: free text is scanned for secret shapes (bearer tokens, JWTs, ``sk-...``
  keys, cloud and SaaS tokens, DSN passwords, ``token=...`` pairs, PEM private keys),
  so a secret pasted into an exception message or a URL is caught too; `text` adds
  the service's own patterns and e-mails and remembers clean strings.

`walk` applies both through nested data, `urls` to URLs, `processor` to structlog
events; `options` holds `configure`. The mask is the fixed string `MASK` and never
keeps a prefix or suffix of the secret. Values under exempt keys are still scanned as
text, so an exemption never lets a recognisable secret through.
"""

from __future__ import annotations

from lightkeeper.sdk.redact.keys import (
    SAFE_KEY_SUFFIXES,
    SAFE_KEYS,
    SENSITIVE_KEY_FRAGMENTS,
    SENSITIVE_KEY_WORDS,
    TOKEN_COUNT_QUALIFIERS,
    is_sensitive_key,
)
from lightkeeper.sdk.redact.mask import MASK
from lightkeeper.sdk.redact.options import configure, on_reconfigure
from lightkeeper.sdk.redact.processor import PASSTHROUGH_KEYS, structlog_processor
from lightkeeper.sdk.redact.text import FIELDS_SEEN_CLEAN, redact_field, redact_text
from lightkeeper.sdk.redact.urls import redact_url
from lightkeeper.sdk.redact.walk import MAX_DEPTH, redact_headers, redact_mapping, redact_value

__all__ = [
    "FIELDS_SEEN_CLEAN",
    "MASK",
    "MAX_DEPTH",
    "PASSTHROUGH_KEYS",
    "SAFE_KEYS",
    "SAFE_KEY_SUFFIXES",
    "SENSITIVE_KEY_FRAGMENTS",
    "SENSITIVE_KEY_WORDS",
    "TOKEN_COUNT_QUALIFIERS",
    "configure",
    "is_sensitive_key",
    "on_reconfigure",
    "redact_field",
    "redact_headers",
    "redact_mapping",
    "redact_text",
    "redact_url",
    "redact_value",
    "structlog_processor",
]
