"""Spans for the libraries Lightkeeper integrates: SQLAlchemy, Redis, httpx, requests, Celery.

Metrics for these libraries come from their own integration modules; this module
adds spans to the same targets once tracing is on (`lightkeeper.sdk.trace_provider`). It
listens on the integrations' seam (`patching.on_instrument`), so the order of
`instrument()`, `instrument_sqlalchemy(engine)` and the imports does not matter:
targets instrumented before tracing starts are caught up, later ones are wired as
they come.

Which code makes the spans (measured with bench/variants_tracing.py):

* Redis, httpx, Celery: the OpenTelemetry contrib instrumentations. Their versions
  are checked before anything is patched, and a conflict raises `TracingSetupError`
  instead of OpenTelemetry's logged-and-skipped default.
* SQLAlchemy: Lightkeeper's own listener. The contrib package declares
  `sqlalchemy < 2.1` (so it refuses SQLAlchemy 2.1), adds a "connect" span per
  `Engine.connect()` and parses the engine URL on every statement; this listener
  makes one span per statement named `SELECT users` (operation and table from the
  metrics integration's cached parser) with the statement text, literals masked.
* requests: Lightkeeper's own `Session.send` wrapper (no contrib package is part
  of the `otel` extra): one client span per call and the `traceparent` header.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

from lightkeeper.sdk.integrations import _labels, patching
from lightkeeper.sdk.integrations.sqlalchemy import statement_for_log

__all__ = ["CONTRIB_RANGE", "TracingSetupError", "enable"]

# Supported versions of the contrib instrumentation packages: [minimum, below).
CONTRIB_RANGE = ("0.46b0", "1")
_CONTRIB: dict[str, tuple[str, str, str]] = {
    "redis": (
        "opentelemetry-instrumentation-redis",
        "opentelemetry.instrumentation.redis",
        "RedisInstrumentor",
    ),
    "httpx": (
        "opentelemetry-instrumentation-httpx",
        "opentelemetry.instrumentation.httpx",
        "HTTPXClientInstrumentor",
    ),
    "celery": (
        "opentelemetry-instrumentation-celery",
        "opentelemetry.instrumentation.celery",
        "CeleryInstrumentor",
    ),
}
_TRACER = "lightkeeper.integrations"
_MAX_CACHED_STATEMENTS = 2048

_lock = threading.Lock()
_provider: Any = None


class TracingSetupError(RuntimeError):
    """Tracing was asked for but cannot work as configured; the message says why."""


def enable(provider: Any) -> None:
    """Add spans to every instrumented target, past and future (idempotent)."""
    global _provider
    _provider = provider
    for integration, callback in _CALLBACKS.items():
        patching.on_instrument(integration, callback)


def _contrib(kind: str) -> Any:
    """The contrib instrumentor for `kind`, after checking every version involved."""
    distribution, module_name, class_name = _CONTRIB[kind]
    module = patching.require(
        module_name,
        integration=f"{kind} tracing",
        distribution=distribution,
        minimum=CONTRIB_RANGE[0],
        below=CONTRIB_RANGE[1],
        extra="otel",
    )
    instrumentor = getattr(module, class_name)()
    from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

    conflict = get_dependency_conflicts(instrumentor.instrumentation_dependencies())
    if conflict is not None:
        raise TracingSetupError(
            f"{distribution} does not support the installed library ({conflict}); lightkeeper will "
            f"not patch it silently. Install a {distribution} release that supports it, or pin the library."
        )
    return instrumentor


# --------------------------------------------------------------------- contrib wiring


def _per_client(name: str) -> Callable[[Any], None]:
    """Redis and httpx alike: every client when none is given, else just that one."""

    def hook(client: Any) -> None:
        instrumentor = _contrib(name)
        if client is None:
            instrumentor.instrument(tracer_provider=_provider)
        elif not getattr(client, "_is_instrumented_by_opentelemetry", False):
            type(instrumentor).instrument_client(client, tracer_provider=_provider)

    return hook


def _celery(_app: Any) -> None:
    # Celery's signals are process wide: one instrumentation covers every app.
    _contrib("celery").instrument(tracer_provider=_provider)


# ------------------------------------------------------------------------ SQLAlchemy

_engines: weakref.WeakSet[Any] = weakref.WeakSet()
_SPAN = "_lightkeeper_span"


def _sqlalchemy(engine: Any) -> None:
    import sqlalchemy.event
    from opentelemetry.trace import SpanKind

    sync_engine = getattr(engine, "sync_engine", engine)
    with _lock:
        if sync_engine in _engines:
            return
        _engines.add(sync_engine)
    tracer = _provider.get_tracer(_TRACER)
    url = sync_engine.url
    system = sync_engine.dialect.name
    static: dict[str, Any] = {"db.system.name": system, "db.system": system}
    if url.database:
        static["db.namespace"] = str(url.database)[:128]
    if url.host:
        static["server.address"] = str(url.host)
    if url.port:
        static["server.port"] = int(url.port)
    client = SpanKind.CLIENT
    cache: dict[str, tuple[str, dict[str, Any]]] = {}

    def describe(statement: str) -> tuple[str, dict[str, Any]]:
        found = cache.get(statement)
        if found is None:
            operation, table = _labels.sql_labels(statement)
            attributes = {
                **static,
                "db.operation.name": operation,
                "db.query.text": statement_for_log(statement),
            }
            name = operation
            if table != _labels.NO_TABLE:
                attributes["db.collection.name"] = table
                name = f"{operation} {table}"
            found = (name, attributes)
            if len(cache) >= _MAX_CACHED_STATEMENTS:
                cache.clear()
            cache[statement] = found
        return found

    def before_cursor_execute(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if context is None:
            return
        name, attributes = describe(statement)
        setattr(context, _SPAN, tracer.start_span(name, kind=client, attributes=attributes))

    def after_cursor_execute(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        span = getattr(context, _SPAN, None)
        if span is not None:
            setattr(context, _SPAN, None)
            span.end()

    def handle_error(ctx: Any) -> None:
        span = getattr(ctx.execution_context, _SPAN, None) if ctx.execution_context is not None else None
        if span is None:
            return
        setattr(ctx.execution_context, _SPAN, None)
        if span.is_recording():
            from opentelemetry.trace import Status, StatusCode

            exc = ctx.original_exception or ctx.sqlalchemy_exception
            name = type(exc).__qualname__ if exc is not None else "error"
            span.set_attribute("error.type", name)
            span.set_status(Status(StatusCode.ERROR, name))
        span.end()

    sqlalchemy.event.listen(sync_engine, "before_cursor_execute", before_cursor_execute)
    sqlalchemy.event.listen(sync_engine, "after_cursor_execute", after_cursor_execute)
    sqlalchemy.event.listen(sync_engine, "handle_error", handle_error)


# -------------------------------------------------------------------------- requests


def _requests(_target: Any) -> None:
    import requests

    patching.patch_class(requests.Session, "send", _wrap_session_send)


def _wrap_session_send(send: Any) -> Any:
    from opentelemetry import context as context_api
    from opentelemetry import propagate
    from opentelemetry.instrumentation.utils import is_instrumentation_enabled
    from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

    tracer = _provider.get_tracer(_TRACER)
    inject = propagate.inject
    client = SpanKind.CLIENT

    def send_traced(self: Any, request: Any, **kwargs: Any) -> Any:
        # The OTLP exporter's own POSTs run with instrumentation suppressed: tracing
        # them would export spans about exporting spans, forever.
        if not is_instrumentation_enabled():
            return send(self, request, **kwargs)
        method = _labels.http_method(request.method or "GET")
        span = tracer.start_span(method, kind=client)
        token = context_api.attach(set_span_in_context(span))
        try:
            inject(request.headers)
            if span.is_recording():
                from urllib.parse import urlsplit

                parts = urlsplit(request.url)
                span.set_attributes(
                    {
                        "http.request.method": method,
                        "url.full": request.url,
                        "server.address": parts.hostname or "",
                    }
                )
            try:
                response = send(self, request, **kwargs)
            except Exception as exc:
                if span.is_recording():
                    span.set_attribute("error.type", type(exc).__qualname__)
                    span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))
                raise
            if span.is_recording():
                span.set_attribute("http.response.status_code", response.status_code)
                if response.status_code >= 400:
                    span.set_status(Status(StatusCode.ERROR))
            return response
        finally:
            context_api.detach(token)
            span.end()

    return send_traced


_CALLBACKS: dict[str, Callable[[Any], None]] = {
    "sqlalchemy": _sqlalchemy,
    "redis": _per_client("redis"),
    "httpx": _per_client("httpx"),
    "celery": _celery,
    "requests": _requests,
}
