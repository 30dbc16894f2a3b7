"""The process's tracer provider: whose it is, where it exports, how much it samples.

* No endpoint and no provider configured by the application: no provider at all.
  The middleware then skips tracing with one attribute test; no exporter, no
  thread, no contrib instrumentation is loaded. If the application configures its
  own provider (before or after `instrument()`, found at the first request),
  Lightkeeper uses it and never installs a second one.
* A second configuration (another `instrument()`, a Celery worker starting) retunes
  the provider Lightkeeper installed instead of adding one: OpenTelemetry's global
  provider can be set once per process.
* Exit waits at most one export timeout for the last batch, not the SDK's 30 s.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from typing import Any

from lightkeeper.sdk.integrations import otel, patching
from lightkeeper.sdk.log_correlation import add_trace_ids
from lightkeeper.sdk.logs import add_processor
from lightkeeper.sdk.settings import Settings
from lightkeeper.sdk.span_export import RedactingSpanExporter, batch_options, exporter_factory, make_processor

__all__ = [
    "TRACER_NAME",
    "active_provider",
    "configure_tracing",
    "force_flush",
    "foreign_provider",
    "make_sampler",
    "otlp_endpoint",
    "sdk_disabled",
    "spans_redacted_on_export",
]

_log = logging.getLogger("lightkeeper.tracing")
TRACER_NAME = "lightkeeper"
TRACES_PATH = "/v1/traces"


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


# Reentrant: activating a provider runs callbacks that may configure again.
lock = threading.RLock()
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


def sdk_disabled() -> bool:
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
    with lock:
        if sdk_disabled():
            return None
        theirs = foreign_provider()
        endpoint = otlp_endpoint(settings)
        if theirs is not None:
            if endpoint is not None and _installed is None:
                _log.info(
                    "an OpenTelemetry tracer provider is already configured; lightkeeper uses it "
                    "and does not add its own OTLP exporter"
                )
            activate(theirs)
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
        activate(_installed.provider)
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
    sampler = make_sampler(rate)
    exporter = RedactingSpanExporter(exporter_factory(endpoint, settings.otlp_timeout_seconds))
    processor = make_processor(exporter, settings.otlp_timeout_seconds, **batch_options())
    provider = TracerProvider(resource=resource, sampler=sampler, shutdown_on_exit=False)
    provider.add_span_processor(processor)
    trace_api.set_tracer_provider(provider)
    if trace_api.get_tracer_provider() is not provider:  # someone won the race to set one
        processor.shutdown()
        theirs = trace_api.get_tracer_provider()
        activate(theirs)
        return theirs
    _installed = _Installed(
        provider, sampler, exporter, processor, endpoint, rate, settings.otlp_timeout_seconds
    )
    if not _exit_registered:
        atexit.register(_shutdown_at_exit)
        _exit_registered = True
    activate(provider)
    return provider


def _retune(installed: _Installed, settings: Settings, endpoint: str, rate: float) -> None:
    if endpoint != installed.endpoint or settings.otlp_timeout_seconds != installed.timeout:
        installed.exporter.replace(exporter_factory(endpoint, settings.otlp_timeout_seconds))
        installed.endpoint = endpoint
        installed.timeout = settings.otlp_timeout_seconds
    elif installed.exporter.factory is None:
        installed.exporter.replace(exporter_factory(endpoint, settings.otlp_timeout_seconds))
    if rate != installed.rate or installed.sampler.rate != rate:
        installed.sampler.retune(rate)
        installed.rate = rate


def activate(provider: Any) -> None:
    """Everything that follows from "spans are recorded in this process".

    Trace ids join the log lines, and the integrations' targets get spans.
    """
    global _active_provider
    if _active_provider is provider:
        return
    _active_provider = provider
    add_processor(add_trace_ids)
    otel.enable(provider)


def active_provider() -> Any:
    return _active_provider


def spans_redacted_on_export() -> bool:
    """True when spans go to Lightkeeper's provider, whose exporter redacts each of them.

    An application's own provider has exporters that do not redact, so whoever puts
    request data on a span must redact it first.
    """
    installed = _installed
    return installed is not None and _active_provider is installed.provider


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


def make_sampler(rate: float) -> Any:
    """ParentBased(TraceIdRatioBased(rate)) in one object whose rate can be changed later."""
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
