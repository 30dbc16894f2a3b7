"""Tracing for applications that set up their own OpenTelemetry `TracerProvider`.

`lightkeeper.instrument(app, otlp_endpoint=...)` builds the provider and the exporter
itself; nothing here is needed then. When your application already installed a
provider, Lightkeeper uses it and never adds a second one, so wrap your exporter to get
the same redaction, failure counting and fork safety:

    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from lightkeeper.tracing import RedactingSpanExporter

    provider.add_span_processor(BatchSpanProcessor(RedactingSpanExporter(lambda: OTLPSpanExporter())))

Importing this module imports the OpenTelemetry SDK (`pip install 'lightkeeper[otel]'`).
"""

from __future__ import annotations

from lightkeeper.sdk.tracing import RedactingSpanExporter

__all__ = ["RedactingSpanExporter"]
