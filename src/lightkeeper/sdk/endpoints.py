"""`/metrics` and the health endpoints, answered by the middleware itself.

Serving them at the ASGI layer works for any framework, keeps them out of the
app's route table and OpenAPI schema, and lets `/health/live` answer even when the
app's own routing or dependencies are broken.

Health answers are public (the kubelet sends no credentials), but a failing check's
error text names hosts, ports and database roles: only callers holding the metrics
token see it, unless `health_details` says otherwise.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

import orjson
from prometheus_client.exposition import choose_encoder

from lightkeeper.sdk import multiprocess
from lightkeeper.sdk.health import HealthChecks
from lightkeeper.sdk.metrics import flush_pending
from lightkeeper.sdk.settings import Settings

Send = Any


async def _respond(
    send: Send, status: int, body: bytes, content_type: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: dict[str, Any], name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _holds_token(scope: dict[str, Any], token: str | None) -> bool:
    """`Authorization: Bearer <token>`, compared in constant time; anything else is no."""
    if token is None:
        return False
    scheme, _, credential = (_header(scope, b"authorization") or b"").strip().partition(b" ")
    # The scheme is case-insensitive (RFC 9110); only the credential is secret.
    if scheme.lower() != b"bearer":
        return False
    return hmac.compare_digest(credential.strip(), token.encode())


def _shows_details(scope: dict[str, Any], settings: Settings) -> bool:
    policy = settings.health_details
    if policy == "always":
        return True
    return policy == "token" and _holds_token(scope, settings.metrics_token)


async def metrics(
    scope: dict[str, Any], send: Send, token: str | None, extra: list[tuple[bytes, bytes]]
) -> None:
    """Prometheus or OpenMetrics exposition, behind an optional bearer token."""
    if token is not None and not _holds_token(scope, token):
        await _respond(
            send,
            401,
            b"missing or wrong bearer token for /metrics\n",
            b"text/plain; charset=utf-8",
            [*extra, (b"www-authenticate", b'Bearer realm="metrics"')],
        )
        return
    accept = (_header(scope, b"accept") or b"").decode("latin-1")
    encoder, content_type = choose_encoder(accept)
    flush_pending()  # this worker's batched updates; the default registry does it too
    registry = multiprocess.exposition_registry()
    if multiprocess.active_directory() is None:
        body = encoder(registry)
    else:
        # Reading every worker's files (and compacting dead ones under a file lock)
        # must not stall the event loop that serves requests.
        body = await asyncio.to_thread(encoder, registry)
    await _respond(send, 200, body, content_type.encode(), extra)


async def live(send: Send, extra: list[tuple[bytes, bytes]]) -> None:
    await _respond(send, 200, b'{"status":"pass"}', b"application/json", extra)


# The body depends on the Authorization header: a shared cache must not mix them up.
_VARY = (b"vary", b"authorization")


async def ready(
    checks: HealthChecks,
    scope: dict[str, Any],
    settings: Settings,
    send: Send,
    extra: list[tuple[bytes, bytes]],
) -> None:
    report = await checks.run()
    body = orjson.dumps(report.as_dict(_shows_details(scope, settings)))
    status = 200 if report.status == "pass" else 503
    await _respond(send, status, body, b"application/json", [*extra, _VARY])


async def detail(
    checks: HealthChecks,
    identity: dict[str, str],
    scope: dict[str, Any],
    settings: Settings,
    send: Send,
    extra: list[tuple[bytes, bytes]],
) -> None:
    """Readiness plus the service's identity; the version is detail too (it tells an
    attacker which known vulnerabilities to try)."""
    report = await checks.run()
    shown = _shows_details(scope, settings)
    payload = {**identity, **report.as_dict(True)} if shown else report.as_dict(False)
    body = orjson.dumps(payload, option=orjson.OPT_INDENT_2)
    status = 200 if report.status == "pass" else 503
    await _respond(send, status, body, b"application/json", [*extra, _VARY])
