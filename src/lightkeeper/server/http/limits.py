"""Size limits on what the API accepts: a request body cap and a cap per string field.

The body cap is enforced while the body streams in (a chunked upload has no
Content-Length to trust), so an oversize request costs at most the cap in memory.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 64 * 1024
MAX_STRING_CHARS = 2048
# routes whose bodies are batches: a batch of 1000 LLM cost events (issue 13)
PATH_LIMITS = {"/api/llm/events": 1024 * 1024}


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Pure ASGI middleware answering 413 when a request body exceeds `MAX_BODY_BYTES`."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = PATH_LIMITS.get(scope["path"], self.limit)
        for key, value in scope["headers"]:
            if key == b"content-length" and value.isdigit() and int(value) > limit:
                await _reject(send, limit)
                return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await _reject(send, limit)


async def _reject(send: Send, limit: int) -> None:
    body = f'{{"detail":"request body larger than {limit} bytes"}}'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def check_sizes(value: Any, path: str = "") -> None:
    """422 naming the first string longer than `MAX_STRING_CHARS` anywhere in `value`."""
    if isinstance(value, str):
        if len(value) > MAX_STRING_CHARS:
            raise HTTPException(422, f"{path or 'value'} is longer than {MAX_STRING_CHARS} characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_sizes(str(key), f"{path}.{key}" if path else str(key))
            check_sizes(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_sizes(item, f"{path}[{index}]")
