"""Per-request context shared by logs, outbound calls and background work.

One ContextVar holding one small dict: setting it costs a single `ContextVar.set`
per request (structlog's `bind_contextvars` creates one variable per key), it
survives `await`, is copied into `asyncio` tasks and into the thread pool Starlette
uses for sync endpoints, and integrations (Celery, httpx) read the request id from
here to propagate it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

_request_context: ContextVar[dict[str, Any] | None] = ContextVar("lightkeeper_request", default=None)


def current() -> Mapping[str, Any]:
    """The context of the request (or task) being handled; empty outside one."""
    return _request_context.get() or {}


def current_request_id() -> str | None:
    ctx = _request_context.get()
    return None if ctx is None else ctx.get("request_id")


def start(values: dict[str, Any]) -> Token[dict[str, Any] | None]:
    """Begin a new context (the dict is owned by the caller's unit of work)."""
    return _request_context.set(values)


def end(token: Token[dict[str, Any] | None]) -> None:
    _request_context.reset(token)


def bind(**values: Any) -> None:
    """Add fields to the current request's log context (no-op outside a request)."""
    ctx = _request_context.get()
    if ctx is not None:
        ctx.update(values)


@contextmanager
def scoped(**values: Any) -> Iterator[dict[str, Any]]:
    """A context for work that is not an HTTP request (a Celery task, a CLI job)."""
    ctx = dict(values)
    token = _request_context.set(ctx)
    try:
        yield ctx
    finally:
        _request_context.reset(token)
