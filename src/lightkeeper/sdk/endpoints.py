"""`/metrics` and the health endpoints, answered by the middleware itself.

Serving them at the ASGI layer works for any framework, keeps them out of the
app's route table and OpenAPI schema, and lets `/health/live` answer even when the
app's own routing or dependencies are broken.
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


async def metrics(
    scope: dict[str, Any], send: Send, token: str | None, extra: list[tuple[bytes, bytes]]
) -> None:
    """Prometheus or OpenMetrics exposition, behind an optional bearer token."""
    if token is not None:
        given = _header(scope, b"authorization") or b""
        expected = b"Bearer " + token.encode()
        if not hmac.compare_digest(given, expected):
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


async def ready(checks: HealthChecks, send: Send, extra: list[tuple[bytes, bytes]]) -> None:
    report = await checks.run()
    body = orjson.dumps(report.as_dict())
    await _respond(send, 200 if report.status == "pass" else 503, body, b"application/json", extra)


async def detail(
    checks: HealthChecks, identity: dict[str, str], send: Send, extra: list[tuple[bytes, bytes]]
) -> None:
    report = await checks.run()
    body = orjson.dumps({**identity, **report.as_dict()}, option=orjson.OPT_INDENT_2)
    await _respond(send, 200 if report.status == "pass" else 503, body, b"application/json", extra)
