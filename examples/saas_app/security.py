"""Password hashing and signed bearer tokens, with the standard library only.

A real service would likely use argon2 and a JWT library; the shape (slow salted
hash, constant-time comparison, short-lived signed token) is the same.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
TOKEN_TTL_SECONDS = 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=_unb64(salt), **_SCRYPT)
    return hmac.compare_digest(candidate, _unb64(digest))


# Checked when the email is unknown, so a failed login takes as long either way and
# response times do not reveal which accounts exist.
DUMMY_HASH = hash_password("not-a-real-password")


def issue_token(user_id: int, secret: str, ttl: int = TOKEN_TTL_SECONDS) -> str:
    payload = _b64(json.dumps({"sub": user_id, "exp": int(time.time()) + ttl}).encode())
    signature = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(signature)}"


def read_token(token: str, secret: str) -> int | None:
    """The user id in a valid, unexpired token; None for anything else."""
    payload, _, signature = token.partition(".")
    expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(_unb64(signature), expected):
            return None
        claims = json.loads(_unb64(payload))
    except ValueError:
        return None
    if not isinstance(claims, dict) or claims.get("exp", 0) < time.time():
        return None
    sub = claims.get("sub")
    return sub if isinstance(sub, int) else None
