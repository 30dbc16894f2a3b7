"""OpenTelemetry traces: one provider per process, one server span per request.

    LIGHTKEEPER_OTLP_ENDPOINT=http://collector:4318     # or OTEL_EXPORTER_OTLP_ENDPOINT
    lightkeeper.instrument(app)                         # spans, trace ids in logs, exemplars

The work is split by job; this module gathers the names other parts use:

* `trace_provider`: the provider's lifecycle (ours, or the application's own), the
  endpoint from the settings, the retunable sampler, flushing and exit.
* `span_export`: the batch processor and the OTLP exporter, which redacts every
  span in the exporter thread and counts what cannot be delivered.
* `log_correlation`: trace and span ids of the current span, for log lines, Sentry
  tags and exemplars.
* `server_span`: the span the middleware makes for each request, and the exception
  event it carries.
* `integrations.otel`: spans for the integrated libraries (SQLAlchemy, Redis, httpx,
  requests, Celery).
"""

from __future__ import annotations

from lightkeeper.sdk.integrations.otel import TracingSetupError
from lightkeeper.sdk.log_correlation import trace_ids
from lightkeeper.sdk.server_span import record_exception
from lightkeeper.sdk.span_export import RedactingSpanExporter
from lightkeeper.sdk.trace_provider import configure_tracing, force_flush, otlp_endpoint

__all__ = [
    "RedactingSpanExporter",
    "TracingSetupError",
    "configure_tracing",
    "force_flush",
    "otlp_endpoint",
    "record_exception",
    "trace_ids",
]
