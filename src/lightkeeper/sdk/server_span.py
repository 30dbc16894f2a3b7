"""The server span of each request, made by Lightkeeper's middleware.

The middleware already has the scope, the route template and the status code, so
one span per request costs a fraction of what FastAPI's native telemetry or the ASGI
contrib instrumentation cost (they add per-message "http send" or per-operation
spans). The span records method, route template, path, scheme and status, never the
query string, headers or body.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lightkeeper.sdk import redact, trace_provider
from lightkeeper.sdk.log_correlation import ids_of
from lightkeeper.sdk.tracebacks import format_exception

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

__all__ = ["RequestSpan", "ServerTracing", "attach", "record_exception"]

# The most of an exception message kept on a span event (after redaction).
MAX_EXCEPTION_MESSAGE = 1024
MAX_STACKTRACE = 16384


def record_exception(exc: BaseException, scope: Any = None, route: Any = None) -> None:
    """Mark the current span failed and attach the (redacted) exception to it.

    Registered as a middleware exception hook: it runs while the request's server
    span is still current, before it ends. Also usable for handled errors.
    """
    trace_api = sys.modules.get("opentelemetry.trace")
    if trace_api is None:
        return
    span = trace_api.get_current_span()
    if not span.is_recording():
        return
    from opentelemetry.trace import Status, StatusCode

    exc_type = type(exc)
    type_name = (
        exc_type.__qualname__
        if exc_type.__module__ == "builtins"
        else (f"{exc_type.__module__}.{exc_type.__qualname__}")
    )
    message = str(exc)[:MAX_EXCEPTION_MESSAGE]
    stacktrace = format_exception(exc)[-MAX_STACKTRACE:]
    if not trace_provider.spans_redacted_on_export():
        message, stacktrace = redact.redact_text(message), redact.redact_text(stacktrace)
    span.add_event(
        "exception",
        {"exception.type": type_name, "exception.message": message, "exception.stacktrace": stacktrace},
    )
    span.set_attribute("error.type", type_name)
    span.set_status(Status(StatusCode.ERROR, exc_type.__name__))


class ServerTracing:
    """Creates the server span of each request for one instrumented app."""

    __slots__ = ("_attach", "_detach", "_extract", "_fields", "_kind", "_set_in_context", "_tracer")

    def __init__(self, tracer: Tracer) -> None:
        from opentelemetry import context as context_api
        from opentelemetry import propagate
        from opentelemetry.trace import SpanKind, set_span_in_context

        self._tracer = tracer
        propagator = propagate.get_global_textmap()
        self._extract = propagator.extract
        self._fields = frozenset(field.lower().encode("latin-1") for field in propagator.fields)
        self._attach = context_api.attach
        self._detach = context_api.detach
        self._set_in_context = set_span_in_context
        self._kind = SpanKind.SERVER

    def start(self, scope: dict[str, Any], request_id: str) -> RequestSpan:
        carrier: dict[str, str] | None = None
        fields = self._fields
        for key, value in scope["headers"]:
            if key in fields:
                if carrier is None:
                    carrier = {}
                carrier[key.decode("latin-1")] = value.decode("latin-1")
        parent = self._extract(carrier) if carrier is not None else None
        span = self._tracer.start_span(scope["method"], parent, self._kind)
        token = self._attach(self._set_in_context(span, parent))
        return RequestSpan(span, token, self._detach, scope, request_id)


class RequestSpan:
    """One request's server span: named and finished by the middleware."""

    __slots__ = ("_detach", "end_ns", "request_id", "scope", "span", "token")

    def __init__(
        self, span: Span, token: Any, detach: Callable[[Any], None], scope: dict[str, Any], request_id: str
    ) -> None:
        self.span = span
        self.token = token
        self._detach = detach
        self.scope = scope
        self.request_id = request_id
        self.end_ns = 0

    def response(self, method: str, route: str, status: int) -> dict[str, str] | None:
        """Name the span after the route; returns the exemplar for the duration histogram."""
        self.end_ns = time.time_ns()
        span = self.span
        if not span.is_recording():
            return None
        scope = self.scope
        span.update_name(f"{method} {route}")
        span.set_attributes(
            {
                "http.request.method": method,
                "http.route": route,
                "http.response.status_code": status,
                "url.path": scope["path"][:2048],
                "url.scheme": scope.get("scheme", "http"),
                "lightkeeper.request_id": self.request_id,
            }
        )
        if status >= 500:
            from opentelemetry.trace import Status, StatusCode

            span.set_status(Status(StatusCode.ERROR))
            span.set_attribute("error.type", str(status))
        found = ids_of(span.get_span_context())
        return {"trace_id": found[0]} if found is not None else None

    def end(self) -> None:
        try:
            self.span.end(self.end_ns or None)
        finally:
            self._detach(self.token)


class _Deferred:
    """Tracing off at `instrument()` time: look once more at the first request.

    An application may configure its own provider after calling `instrument()` (in a
    lifespan handler, or further down its module); the first request sees it.
    """

    __slots__ = ("runtime",)

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    def start(self, scope: dict[str, Any], request_id: str) -> RequestSpan | None:
        provider = trace_provider.foreign_provider()
        if provider is None:
            self.runtime.tracing = None
            return None
        with trace_provider.lock:
            trace_provider.activate(provider)
        return _serve(self.runtime, provider).start(scope, request_id)


def _serve(runtime: Any, provider: Any) -> ServerTracing:
    tracing = ServerTracing(provider.get_tracer(trace_provider.TRACER_NAME))
    runtime.tracing = tracing
    if record_exception not in runtime.exception_hooks:
        runtime.exception_hooks.insert(0, record_exception)
    return tracing


def attach(runtime: Any, provider: Any) -> None:
    """Decide whether an instrumented app's requests get server spans.

    `provider` is what `configure_tracing` returned for this process (None: tracing
    off for now, unless the application installs its own provider before the first
    request).
    """
    if provider is None:
        runtime.tracing = None if trace_provider.sdk_disabled() else _Deferred(runtime)
        return
    _serve(runtime, provider)
