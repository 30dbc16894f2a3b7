"""Admin bearer tokens and heartbeat ping tokens.

Only SHA-256 hashes of admin tokens are stored: a copy of the database (a backup, a
support bundle) must not let anyone change probes. `LIGHTKEEPER_ADMIN_TOKEN` is hashed
into the same table at start, so both kinds of token are checked one way.

Ping tokens are HMACs of the probe name keyed by the oldest stored admin-token hash:
stable across restarts, unguessable from the probe name, and nothing extra to store.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from sqlalchemy import Engine, func, insert, select

from lightkeeper.server.store import tables as t

PING_TOKEN_CHARS = 32


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def ensure_admin_token(engine: Engine, configured: str | None) -> str | None:
    """Store the configured token's hash; with none configured and none stored, make one.

    Returns the generated token (to print once) or None when nothing was generated.
    """
    with engine.begin() as conn:
        stored = conn.execute(select(func.count()).select_from(t.admin_tokens)).scalar_one()
        generated: str | None = None
        if configured:
            digest = _hash(configured)
            known = conn.execute(select(t.admin_tokens.c.id).where(t.admin_tokens.c.sha256 == digest)).first()
            if known is None:
                conn.execute(insert(t.admin_tokens).values(sha256=digest, created_at=datetime.now(UTC)))
        elif stored == 0:
            generated = secrets.token_urlsafe(32)
            conn.execute(insert(t.admin_tokens).values(sha256=_hash(generated), created_at=datetime.now(UTC)))
    return generated


def bearer(header: str | None) -> str | None:
    """The credential of `Authorization: Bearer <token>`, or None."""
    scheme, _, credential = (header or "").strip().partition(" ")
    credential = credential.strip()
    return credential if scheme.lower() == "bearer" and credential else None


def is_admin(engine: Engine, configured: str | None, presented: str | None) -> bool:
    """Constant-time against the configured token; otherwise by hash lookup in the store."""
    if not presented:
        return False
    if configured:
        return hmac.compare_digest(presented.encode(), configured.encode())
    digest = _hash(presented)
    with engine.connect() as conn:
        rows = conn.execute(select(t.admin_tokens.c.sha256)).scalars().all()
    return any(hmac.compare_digest(digest, row) for row in rows)


def _ping_key(engine: Engine) -> bytes:
    with engine.connect() as conn:
        first = conn.execute(
            select(t.admin_tokens.c.sha256).order_by(t.admin_tokens.c.id).limit(1)
        ).scalar_one_or_none()
    if first is None:
        raise LookupError("no admin token stored yet; the server creates one at start")
    return str(first).encode()


def ping_token(engine: Engine, probe: str) -> str:
    return hmac.new(_ping_key(engine), f"ping:{probe}".encode(), hashlib.sha256).hexdigest()[
        :PING_TOKEN_CHARS
    ]


def probe_for_ping_token(engine: Engine, token: str, names: list[str]) -> str | None:
    key = _ping_key(engine)
    for name in names:
        expected = hmac.new(key, f"ping:{name}".encode(), hashlib.sha256).hexdigest()[:PING_TOKEN_CHARS]
        if hmac.compare_digest(expected.encode(), token.encode()):  # str needs ASCII: bytes for any token
            return name
    return None
