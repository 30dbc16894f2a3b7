"""OpenTelemetry traces: one provider per process, one server span per request.

    LIGHTKEEPER_OTLP_ENDPOINT=http://collector:4318     # or OTEL_EXPORTER_OTLP_ENDPOINT
    lightkeeper.instrument(app)                         # spans, trace ids in logs, exemplars

Decisions, and why:

* No endpoint and no provider configured by the application: no provider at all.
  The middleware then skips tracing with one attribute test; no exporter, no
  thread, no contrib instrumentation is loaded. If the application configures its
  own provider (before or after `instrument()`, found at the first request),
  Lightkeeper uses it and never installs a second one.
* The server span is created by Lightkeeper's middleware, not by FastAPI's native
  telemetry or the ASGI contrib instrumentation: the middleware already has the
  scope, the route template and the status code, so one span per request costs a
  fraction of theirs (they add per-message "http send" or per-operation spans).
  FastAPI's own tracing is switched off on instrumented apps so nothing is counted
  twice.
* Privacy: the server span records method, route template, path, scheme and status,
  never the query string, headers or body. Every span (ours, the contrib
  instrumentations', the application's) is redacted by the shared rules in the
  exporter thread before it is encoded, so the request path pays nothing for it.
* Failures never reach the application: spans that cannot be delivered (endpoint
  down or hung, queue full) are counted in
  `lightkeeper_telemetry_export_failures_total{exporter="otlp"}`; each export is
  bounded by `otlp_timeout_seconds`, and exit waits at most that long.
* Forks: the batch processor restarts its thread in a child process (the SDK does
  that) and the exporter, whose HTTP session must not be shared with the parent, is
  re-created there, so gunicorn `--preload` and Celery prefork children keep exporting.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from lightkeeper import catalogue
from lightkeeper.sdk import redact
from lightkeeper.sdk.integrations import patching
from lightkeeper.sdk.metrics import family
from lightkeeper.sdk.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from opentelemetry.trace import Span, Tracer

__all__ = [
    "RedactingSpanExporter",
    "TracingSetupError",
    "configure_tracing",
    "force_flush",
    "otlp_endpoint",
    "record_exception",
    "trace_ids",
]

_log = logging.getLogger("lightkeeper.tracing")
TRACER_NAME = "lightkeeper"
TRACES_PATH = "/v1/traces"
# The most of an exception message kept on a span event (after redaction).
MAX_EXCEPTION_MESSAGE = 1024
MAX_STACKTRACE = 16384


class TracingSetupError(RuntimeError):
    """Tracing was asked for but cannot work as configured; the message says why."""


# ------------------------------------------------------------------- process state


class _Installed:
    """The provider Lightkeeper created in this process, and the parts it may retune."""

    def __init__(
        self,
        provider: Any,
        sampler: Any,
        exporter: RedactingSpanExporter,
        processor: Any,
        endpoint: str,
        rate: float,
        timeout: float,
    ) -> None:
        self.provider = provider
        self.sampler = sampler
        self.exporter = exporter
        self.processor = processor
        self.endpoint = endpoint
        self.rate = rate
        self.timeout = timeout


_lock = threading.RLock()
_installed: _Installed | None = None
_active_provider: Any = None  # the provider spans go to (ours or the application's)
_exit_registered = False


def otlp_endpoint(settings: Settings) -> str | None:
    """The OTLP/HTTP traces URL: the Lightkeeper setting, else the OpenTelemetry variables.

    `otlp_endpoint` and `OTEL_EXPORTER_OTLP_ENDPOINT` are base URLs (`/v1/traces` is
    appended, as the OpenTelemetry specification says); `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
    is used as given.
    """
    base = settings.otlp_endpoint
    if not base:
        full = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
        if full:
            return full
        base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or None
    if not base:
        return None
    base = base.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


def _sdk_disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def foreign_provider() -> Any:
    """The tracer provider the application configured itself, if any (never imports OTel)."""
    trace_api = sys.modules.get("opentelemetry.trace")
    if trace_api is None:
        return None
    provider = trace_api.get_tracer_provider()
    if _installed is not None and provider is _installed.provider:
        return None
    name = type(provider).__name__
    if name in ("ProxyTracerProvider", "NoOpTracerProvider"):
        return None
    return provider


def configure_tracing(settings: Settings) -> Any:
    """Set up tracing for this process; returns the provider spans go to, or None.

    Idempotent. A second call with another endpoint or sample rate retunes the
    provider Lightkeeper installed (its resource stays as first configured: an
    OpenTelemetry provider's resource cannot change). A provider the application
    installed itself is used as it is.
    """
    global _active_provider
    with _lock:
        if _sdk_disabled():
            return None
        theirs = foreign_provider()
        endpoint = otlp_endpoint(settings)
        if theirs is not None:
            if endpoint is not None and _installed is None:
                _log.info(
                    "an OpenTelemetry tracer provider is already configured; lightkeeper uses it "
                    "and does not add its own OTLP exporter"
                )
            _activate(theirs)
            return theirs
        if endpoint is None:
            if _installed is not None:
                # Asked again without an endpoint: stop exporting, keep the provider
                # (OpenTelemetry's global provider cannot be unset).
                _installed.exporter.replace(None)
                _installed.sampler.retune(0.0)
                _active_provider = None
            return None
        rate = settings.effective_trace_sample_rate
        if _installed is None:
            return _install(settings, endpoint, rate)
        _retune(_installed, settings, endpoint, rate)
        _activate(_installed.provider)
        return _installed.provider


def _load_sdk() -> None:
    patching.require(
        "opentelemetry.sdk.trace",
        integration="tracing",
        distribution="opentelemetry-sdk",
        minimum="1.25",
        below="2",
        extra="otel",
    )
    patching.require(
        "opentelemetry.exporter.otlp.proto.http.trace_exporter",
        integration="tracing",
        distribution="opentelemetry-exporter-otlp-proto-http",
        minimum="1.25",
        below="2",
        extra="otel",
    )


def _exporter_factory(endpoint: str, timeout: float) -> Callable[[], SpanExporter]:
    def make() -> SpanExporter:
        return cast("SpanExporter", LeanOTLPExporter(endpoint, timeout))

    return make


class LeanOTLPExporter:
    """OTLP/HTTP export with Lightkeeper's encoder and the official exporter's transport.

    The official `OTLPSpanExporter` keeps doing the HTTP part (session, retries with
    backoff inside `timeout`, TLS and header settings from `OTEL_EXPORTER_OTLP_*`);
    only the protobuf encoding is replaced (see lightkeeper.sdk.otlp_encoder), and it
    redacts while it encodes. Exporter versions without the internal client it relies
    on fall back to the official encoder behind `redact_span`.
    """

    encodes_redacted = True

    def __init__(self, endpoint: str, timeout: float) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        from lightkeeper.sdk.otlp_encoder import Encoder

        self._official: Any = OTLPSpanExporter(endpoint=endpoint, timeout=timeout)
        client = getattr(self._official, "_client", None)
        self._client = client if callable(getattr(client, "export", None)) else None
        self._encoder = Encoder(mask_sql_literals)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        from opentelemetry.sdk.trace.export import SpanExportResult

        if self._client is None:
            return cast("SpanExportResult", self._official.export([redact_span(span) for span in spans]))
        result = self._client.export(self._encoder.encode(spans))
        return SpanExportResult.SUCCESS if getattr(result, "success", False) else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self._official.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _install(settings: Settings, endpoint: str, rate: float) -> Any:
    global _installed, _exit_registered
    _load_sdk()
    from opentelemetry import trace as trace_api
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource.create(
        {
            "service.name": settings.service,
            "service.version": settings.version,
            "deployment.environment": settings.environment,
            "deployment.environment.name": settings.environment,
        }
    )
    sampler = _make_sampler(rate)
    exporter = RedactingSpanExporter(_exporter_factory(endpoint, settings.otlp_timeout_seconds))
    processor = _make_processor(exporter, settings.otlp_timeout_seconds, **_batch_options())
    provider = TracerProvider(resource=resource, sampler=sampler, shutdown_on_exit=False)
    provider.add_span_processor(processor)
    trace_api.set_tracer_provider(provider)
    if trace_api.get_tracer_provider() is not provider:  # someone won the race to set one
        processor.shutdown()
        theirs = trace_api.get_tracer_provider()
        _activate(theirs)
        return theirs
    _installed = _Installed(
        provider, sampler, exporter, processor, endpoint, rate, settings.otlp_timeout_seconds
    )
    if not _exit_registered:
        atexit.register(_shutdown_at_exit)
        _exit_registered = True
    _activate(provider)
    return provider


def _retune(installed: _Installed, settings: Settings, endpoint: str, rate: float) -> None:
    if endpoint != installed.endpoint or settings.otlp_timeout_seconds != installed.timeout:
        installed.exporter.replace(_exporter_factory(endpoint, settings.otlp_timeout_seconds))
        installed.endpoint = endpoint
        installed.timeout = settings.otlp_timeout_seconds
    elif installed.exporter.factory is None:
        installed.exporter.replace(_exporter_factory(endpoint, settings.otlp_timeout_seconds))
    if rate != installed.rate or installed.sampler.rate != rate:
        installed.sampler.retune(rate)
        installed.rate = rate


def _activate(provider: Any) -> None:
    """Everything that follows from "spans are recorded in this process"."""
    global _active_provider
    if _active_provider is provider:
        return
    _active_provider = provider
    from lightkeeper.sdk import logs as lk_logging
    from lightkeeper.sdk.integrations import otel

    lk_logging.add_processor(add_trace_ids)
    otel.enable(provider)


def active_provider() -> Any:
    return _active_provider


def force_flush(timeout_seconds: float = 10.0) -> bool:
    """Export every finished span now (tests, and short-lived jobs before they exit)."""
    provider = _active_provider
    if provider is None or not hasattr(provider, "force_flush"):
        return True
    return bool(provider.force_flush(int(timeout_seconds * 1000)))


def _shutdown_at_exit() -> None:
    # The SDK's own exit hook would wait up to 30 s for a hung collector; this one
    # gives the last batch one export timeout and lets the process go.
    installed = _installed
    if installed is None:
        return
    try:
        inner = getattr(installed.processor, "_batch_processor", None)
        if inner is not None:
            inner.shutdown(timeout_millis=int(installed.timeout * 1000))
        else:
            installed.processor.shutdown()
    except Exception:  # exiting anyway
        _log.debug("span processor shutdown failed", exc_info=True)


# ------------------------------------------------------------------------ sampler


def _make_sampler(rate: float) -> Any:
    from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased

    class RetunableSampler(Sampler):
        """ParentBased(TraceIdRatioBased(rate)), with a rate `instrument()` may change later.

        Tracers copy their provider's sampler when created (the contrib instrumentations
        create theirs once), so the rate lives in this one object they all share.
        """

        def __init__(self, rate: float) -> None:
            self.rate = rate
            self.current: Any = ParentBased(TraceIdRatioBased(rate))

        def retune(self, rate: float) -> None:
            self.rate = rate
            self.current = ParentBased(TraceIdRatioBased(rate))

        def should_sample(self, *args: Any, **kwargs: Any) -> Any:
            return self.current.should_sample(*args, **kwargs)

        def get_description(self) -> str:
            return str(self.current.get_description())

    return RetunableSampler(rate)


# -------------------------------------------------------------- processor, exporter


# Spans per export. The SDK's 512 means one export encodes for ~10 ms in a row, which
# shows as a 20+ ms p99 on a busy single-process server; 128 keeps the same throughput
# with a p99 of a few ms (bench/variants_tracing.py, wrk). OTEL_BSP_MAX_EXPORT_BATCH_SIZE wins.
EXPORT_BATCH_SIZE = 128


def _batch_options() -> dict[str, Any]:
    if os.environ.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"):
        return {}
    return {"max_export_batch_size": EXPORT_BATCH_SIZE}


def _make_processor(exporter: RedactingSpanExporter, timeout: float, **options: Any) -> Any:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    failures = family(catalogue.TELEMETRY_EXPORT_FAILURES).labels("otlp")

    class CountingBatchSpanProcessor(BatchSpanProcessor):
        """Counts spans dropped because the queue is full (the exporter fell behind)."""

        def on_end(self, span: ReadableSpan) -> None:
            inner = getattr(self, "_batch_processor", None)
            if inner is not None and span.context is not None and span.context.trace_flags.sampled:
                queue = getattr(inner, "_queue", None)
                if queue is not None and len(queue) >= inner._max_queue_size:
                    failures.inc()
            super().on_end(span)

    return CountingBatchSpanProcessor(cast(Any, exporter), export_timeout_millis=timeout * 1000, **options)


class RedactingSpanExporter:
    """A span exporter that redacts every span, counts failures and survives forks.

    Wrap your own exporter with it when your application brings its own provider:
    `provider.add_span_processor(BatchSpanProcessor(RedactingSpanExporter(lambda: OTLPSpanExporter())))`.
    It takes a factory rather than an exporter so that a forked child builds its own
    (an HTTP session must not be shared across a fork).
    """

    def __init__(self, factory: Callable[[], SpanExporter] | None) -> None:
        self.factory = factory
        self._inner: SpanExporter | None = factory() if factory is not None else None
        self._failures = family(catalogue.TELEMETRY_EXPORT_FAILURES).labels("otlp")
        self._swap = threading.Lock()
        if hasattr(os, "register_at_fork"):
            ref = weakref.ref(self)

            def renew_in_child() -> None:
                exporter = ref()
                if exporter is not None:
                    exporter._renew()

            os.register_at_fork(after_in_child=renew_in_child)

    def _renew(self) -> None:
        self._swap = threading.Lock()  # a lock held by another thread at fork time stays held
        self._inner = self.factory() if self.factory is not None else None

    def replace(self, factory: Callable[[], SpanExporter] | None) -> None:
        """Send future batches elsewhere (None: drop them)."""
        with self._swap:
            old = self._inner
            self.factory = factory
            self._inner = factory() if factory is not None else None
        if old is not None:
            try:
                old.shutdown()
            except Exception:
                _log.debug("old span exporter did not shut down cleanly", exc_info=True)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        from opentelemetry.sdk.trace.export import SpanExportResult

        inner = self._inner
        if inner is None:
            return SpanExportResult.SUCCESS
        try:
            if getattr(inner, "encodes_redacted", False):
                result = inner.export(spans)
            else:
                result = inner.export([redact_span(span) for span in spans])
        except Exception:
            _log.warning("span export failed", exc_info=True)
            result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self._failures.inc(len(spans))
        return result

    def shutdown(self) -> None:
        inner = self._inner
        if inner is not None:
            inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        inner = self._inner
        return True if inner is None else bool(inner.force_flush(timeout_millis))


def _redact_attributes(attributes: Any) -> tuple[Any, bool]:
    if not attributes:
        return attributes, False
    from lightkeeper.sdk.otlp_encoder import redact_attribute

    changed = False
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        new = redact_attribute(key, value, mask_sql_literals)
        if new is not value and new != value:
            changed = True
            out[key] = new
        else:
            out[key] = value
    return (out if changed else attributes), changed


def redact_span(span: ReadableSpan) -> ReadableSpan:
    """The span with secrets masked in its name, attributes, events, links and status."""
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.trace import Link, Status

    name = redact.redact_text(span.name)
    attributes, changed = _redact_attributes(span.attributes)
    changed |= name is not span.name
    events = []
    for event in span.events:
        event_attrs, event_changed = _redact_attributes(event.attributes)
        event_name = redact.redact_text(event.name)
        if event_changed or event_name is not event.name:
            changed = True
            events.append(Event(event_name, event_attrs, event.timestamp))
        else:
            events.append(event)
    links = []
    for link in span.links:
        link_attrs, link_changed = _redact_attributes(link.attributes)
        changed |= link_changed
        links.append(Link(link.context, link_attrs) if link_changed else link)
    status = span.status
    if status.description:
        description = redact.redact_text(status.description)
        if description is not status.description:
            changed = True
            status = Status(status.status_code, description)
    if not changed:
        return span
    return ReadableSpan(
        name=name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=events,
        links=links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def mask_sql_literals(statement: str) -> str:
    """Literals in hand-written SQL become '?': the text keeps its shape, not its data."""
    from lightkeeper.sdk.integrations.sqlalchemy import statement_for_log

    masked = statement_for_log(statement)
    return statement if masked == statement else masked


# ----------------------------------------------------------------- logs, exemplars

_ids_cache: tuple[Any, str, str] = (None, "", "")
_current_span: Any = None  # opentelemetry.trace.get_current_span, bound on first use


def trace_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) of the current span as hex, or None outside a span."""
    trace_api = sys.modules.get("opentelemetry.trace")
    if trace_api is None:
        return None
    return _ids(trace_api.get_current_span().get_span_context())


def _ids(ctx: Any) -> tuple[str, str] | None:
    global _ids_cache
    if not ctx.trace_id:
        return None
    cached = _ids_cache
    if cached[0] is not ctx:
        # to_bytes().hex(): a quarter of the cost of a "032x" format spec
        cached = (ctx, ctx.trace_id.to_bytes(16, "big").hex(), ctx.span_id.to_bytes(8, "big").hex())
        _ids_cache = cached
    return cached[1], cached[2]


def add_trace_ids(_: Any, __: str, event_dict: Any) -> Any:
    """structlog processor: `trace_id` / `span_id` of the span the line is written in.

    Reads the current span context only; nothing is created or formatted twice for the
    lines of one span. Lines written outside any span keep the `null` ids.
    """
    global _current_span
    current = _current_span
    if current is None:
        from opentelemetry.trace import get_current_span as current

        _current_span = current
    found = _ids(current().get_span_context())
    if found is not None:
        event_dict.setdefault("trace_id", found[0])
        event_dict.setdefault("span_id", found[1])
    return event_dict


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

    from lightkeeper.sdk.error_reporting import format_exception

    exc_type = type(exc)
    type_name = (
        exc_type.__qualname__
        if exc_type.__module__ == "builtins"
        else (f"{exc_type.__module__}.{exc_type.__qualname__}")
    )
    message = str(exc)[:MAX_EXCEPTION_MESSAGE]
    stacktrace = format_exception(exc)[-MAX_STACKTRACE:]
    installed = _installed
    if installed is None or _active_provider is not installed.provider:
        # The application's own provider: its exporters do not redact, so do it here.
        # With Lightkeeper's provider the exporter thread redacts every span anyway.
        message, stacktrace = redact.redact_text(message), redact.redact_text(stacktrace)
    span.add_event(
        "exception",
        {"exception.type": type_name, "exception.message": message, "exception.stacktrace": stacktrace},
    )
    span.set_attribute("error.type", type_name)
    span.set_status(Status(StatusCode.ERROR, exc_type.__name__))


# -------------------------------------------------------------------- server span


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
        found = _ids(span.get_span_context())
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
        provider = foreign_provider()
        if provider is None:
            self.runtime.tracing = None
            return None
        with _lock:
            _activate(provider)
        tracing = ServerTracing(provider.get_tracer(TRACER_NAME))
        self.runtime.tracing = tracing
        if record_exception not in self.runtime.exception_hooks:
            self.runtime.exception_hooks.insert(0, record_exception)
        return tracing.start(scope, request_id)


def setup_hook(app: Any, settings: Settings, runtime: Any) -> None:
    """`instrument()` hook: decide whether this app's requests get server spans."""
    provider = configure_tracing(settings)
    if provider is None:
        runtime.tracing = None if _sdk_disabled() else _Deferred(runtime)
        return
    runtime.tracing = ServerTracing(provider.get_tracer(TRACER_NAME))
    if record_exception not in runtime.exception_hooks:
        runtime.exception_hooks.insert(0, record_exception)


def _on_celery(celery_app: Any) -> None:
    """A Celery worker never calls `instrument()`: set tracing up when it starts."""
    from celery import signals

    def worker_init(sender: Any = None, **_: Any) -> None:
        app = getattr(sender, "app", None)
        configure_tracing(_celery_settings(app))

    signals.worker_init.connect(worker_init, weak=False, dispatch_uid="lightkeeper.tracing.worker_init")


def _celery_settings(celery_app: Any) -> Settings:
    from lightkeeper.sdk.integrations import celery as lk_celery

    options = lk_celery._apps.get(celery_app) if celery_app is not None else None
    if options is not None:
        return options.settings
    from lightkeeper.sdk.settings import load_settings

    return load_settings()


patching.on_instrument("celery", _on_celery)
