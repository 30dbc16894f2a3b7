"""URLs: the userinfo password and sensitive query or fragment parameters masked,
everything else kept byte for byte so the URL still identifies the call."""

from __future__ import annotations

from urllib.parse import unquote_plus

from lightkeeper.sdk.redact.keys import is_sensitive_key
from lightkeeper.sdk.redact.mask import MASK
from lightkeeper.sdk.redact.text import redact_text


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
