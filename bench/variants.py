"""The apps the overhead benchmark compares: a bare FastAPI app, the instrumentation
teams assemble today (anchors), and Lightkeeper.

Every builder returns a fresh app with the same two routes. Each variant runs in its
own process, so libraries that patch globals (OpenTelemetry, Sentry, logfire) cannot
affect the others. Nothing leaves the machine: span and event exporters drop what
they receive, logs go to /dev/null.
"""

from __future__ import annotations

import importlib
import os
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

ITEM_PATH = "/items/42"
FAIL_PATH = "/fail"


def base_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def read_item(item_id: int) -> dict[str, Any]:
        return {"id": item_id, "name": "widget", "tags": ["a", "b"]}

    @app.get("/fail")
    async def fail() -> None:
        raise RuntimeError("bench failure")

    @app.exception_handler(Exception)
    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": "internal error"}, status_code=500)

    return app


def _devnull_bytes() -> Any:
    return open(os.devnull, "wb")


def _structlog_json(stream: Any) -> Any:
    import orjson
    import structlog

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        logger_factory=structlog.BytesLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
    return structlog.get_logger()


def bare() -> FastAPI:
    return base_app()


def naive() -> FastAPI:
    """The blog-post recipe: two BaseHTTPMiddleware layers, labels by raw path."""
    import structlog
    from prometheus_client import Counter, Histogram

    app = base_app()
    requests = Counter("naive_requests_total", "requests", ["method", "path", "status"])
    latency = Histogram("naive_request_seconds", "latency", ["method", "path"])
    structlog.configure(
        processors=[structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(open(os.devnull, "w")),  # noqa: SIM115
    )
    log = structlog.get_logger()

    @app.middleware("http")
    async def metrics(request: Request, call_next: Callable[..., Any]) -> Any:
        import time

        start = time.perf_counter()
        response = await call_next(request)
        requests.labels(request.method, request.url.path, response.status_code).inc()
        latency.labels(request.method, request.url.path).observe(time.perf_counter() - start)
        return response

    @app.middleware("http")
    async def correlation(request: Request, call_next: Callable[..., Any]) -> Any:
        rid = request.headers.get("x-request-id") or str(uuid.uuid4())
        response = await call_next(request)
        response.headers["x-request-id"] = rid
        log.info("request", path=request.url.path, status=response.status_code, request_id=rid)
        return response

    return app


def pfi() -> FastAPI:
    from prometheus_fastapi_instrumentator import Instrumentator

    app = base_app()
    Instrumentator().instrument(app).expose(app)
    return app


def starlette_exporter() -> FastAPI:
    from starlette_exporter import PrometheusMiddleware, handle_metrics

    app = base_app()
    app.add_middleware(PrometheusMiddleware, group_paths=True)
    app.add_route("/metrics", handle_metrics)
    return app


class _AccessLog:
    """A pure-ASGI structlog access log, as teams write next to asgi-correlation-id."""

    def __init__(self, app: Any, log: Any) -> None:
        self.app, self.log = app, log

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        import time

        from asgi_correlation_id import correlation_id

        start = time.perf_counter()
        status = [0]

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            self.log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                route=getattr(route, "path", None),
                status=status[0],
                duration_ms=round((time.perf_counter() - start) * 1000, 3),
                request_id=correlation_id.get(),
            )


def _add_correlation_structlog(app: FastAPI) -> None:
    from asgi_correlation_id import CorrelationIdMiddleware

    log = _structlog_json(_devnull_bytes())
    app.add_middleware(_AccessLog, log=log)
    app.add_middleware(CorrelationIdMiddleware)


def correlation_structlog() -> FastAPI:
    app = base_app()
    _add_correlation_structlog(app)
    return app


class _DropSpans:
    def export(self, spans: Any) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _add_otel(app: FastAPI) -> None:
    from opentelemetry import trace
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_DropSpans()))  # type: ignore[arg-type]
    trace.set_tracer_provider(provider)
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)


def otel() -> FastAPI:
    app = base_app()
    _add_otel(app)
    return app


def logfire() -> FastAPI:
    import logfire as lf

    lf.configure(send_to_logfire=False, console=False)
    app = base_app()
    lf.instrument_fastapi(app)
    return app


def sentry() -> FastAPI:
    import sentry_sdk
    from sentry_sdk.transport import Transport

    class Drop(Transport):
        def capture_envelope(self, envelope: Any) -> None:
            return None

    sentry_sdk.init(dsn="http://public@127.0.0.1:9/1", traces_sample_rate=1.0, transport=Drop)
    return base_app()


def stack() -> FastAPI:
    app = base_app()
    _add_correlation_structlog(app)
    from prometheus_fastapi_instrumentator import Instrumentator

    Instrumentator().instrument(app).expose(app)
    _add_otel(app)
    return app


def lightkeeper() -> Any:
    import lightkeeper as lk

    app = base_app()
    lk.instrument(app, service="bench", environment="bench", version="0")
    return app


VARIANTS: dict[str, tuple[str, Callable[[], Any]]] = {
    "bare": ("FastAPI, no instrumentation", bare),
    "naive": ("2x BaseHTTPMiddleware: prometheus-client by raw path + uuid4 + structlog", naive),
    "pfi": ("prometheus-fastapi-instrumentator defaults + /metrics", pfi),
    "starlette_exporter": ("starlette-exporter PrometheusMiddleware(group_paths=True)", starlette_exporter),
    "correlation_structlog": (
        "asgi-correlation-id + pure-ASGI structlog access log (orjson)",
        correlation_structlog,
    ),
    "otel": ("OpenTelemetry contrib FastAPI, BatchSpanProcessor -> drop", otel),
    "logfire": ("logfire.instrument_fastapi, send_to_logfire=False", logfire),
    "sentry": ("sentry-sdk, traces_sample_rate=1.0, drop transport", sentry),
    "stack": ("hand-assembled: pfi + correlation id + structlog + OpenTelemetry", stack),
    "lightkeeper": ("lightkeeper.instrument(app): metrics + access log + request id", lightkeeper),
}

# Variants contributed by other modules (tracing, errors) join the same run.
for _module in ("bench.variants_tracing",):
    try:
        VARIANTS.update(importlib.import_module(_module).VARIANTS)
    except ModuleNotFoundError as exc:
        if exc.name != _module:
            raise
