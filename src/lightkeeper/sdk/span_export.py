"""Span export: the batch processor, the OTLP exporter, and redaction before encoding.

Every span (Lightkeeper's, the contrib instrumentations', the application's) is
redacted by the shared rules in the exporter thread, so the request path pays
nothing for it. Spans that cannot be delivered (collector down or hung, queue full)
are counted in `lightkeeper_telemetry_export_failures_total{exporter="otlp"}`. The
exporter is rebuilt in a forked child, whose HTTP session must not be the parent's.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from lightkeeper import catalogue
from lightkeeper.sdk import redact
from lightkeeper.sdk.integrations.sqlalchemy import statement_for_log
from lightkeeper.sdk.metrics import family
from lightkeeper.sdk.otlp_encoder import Encoder, redact_attribute

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

__all__ = [
    "EXPORT_BATCH_SIZE",
    "LeanOTLPExporter",
    "RedactingSpanExporter",
    "batch_options",
    "exporter_factory",
    "make_processor",
    "mask_sql_literals",
    "redact_span",
]

_log = logging.getLogger("lightkeeper.tracing")

# Spans per export. The SDK's 512 means one export encodes for ~10 ms in a row, which
# shows as a 20+ ms p99 on a busy single-process server; 128 keeps the same throughput
# with a p99 of a few ms (bench/variants_tracing.py, wrk). OTEL_BSP_MAX_EXPORT_BATCH_SIZE wins.
EXPORT_BATCH_SIZE = 128


def batch_options() -> dict[str, Any]:
    if os.environ.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"):
        return {}
    return {"max_export_batch_size": EXPORT_BATCH_SIZE}


def exporter_factory(endpoint: str, timeout: float) -> Callable[[], SpanExporter]:
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


def make_processor(exporter: RedactingSpanExporter, timeout: float, **options: Any) -> Any:
    """A BatchSpanProcessor that counts the spans it drops because its queue is full."""
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
    masked = statement_for_log(statement)
    return statement if masked == statement else masked
