"""lightkeeper.sdk.otlp_encoder writes the same ExportTraceServiceRequest as the
official opentelemetry-exporter-otlp encoder (both decoded with opentelemetry-proto),
and redacts attributes, names, events and status while it encodes.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as official_encode
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lightkeeper.sdk import redact, span_export
from lightkeeper.sdk.otlp_encoder import Encoder, encode_spans

REMOTE = trace.NonRecordingSpan(
    trace.SpanContext(
        0x0AF7651916CD43DD8448EB211C80319C,
        0xB7AD6B7169203331,
        True,
        trace.TraceFlags(1),
        trace.TraceState([("vendor", "v1")]),
    )
)


def spans() -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "enc", "service.version": "1"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    main = provider.get_tracer("lightkeeper", "2.0", schema_url="https://opentelemetry.io/schemas/1.11.0")
    other = provider.get_tracer("other")
    for i in range(40):
        tracer = main if i % 3 else other
        parent = trace.set_span_in_context(REMOTE) if i % 2 else None
        span = tracer.start_span(
            "GET",
            kind=trace.SpanKind(i % 5),
            context=parent,
            links=[trace.Link(REMOTE.get_span_context(), {"link.n": i})] if i % 11 == 0 else (),
        )
        span.update_name("GET /items/{item_id}" if i % 4 else f"SELECT t{i}")
        span.set_attributes(
            {
                "http.request.method": "GET",
                "http.response.status_code": 200 - i,
                "url.path": f"/items/{i}",
                "ratio": i / 7,
                "flag": bool(i % 2),
                "tags": ("a", "b"),
                "counts": (1, -2, 3 * 10**12),
                "negative": -i * 1000,
            }
        )
        if i % 7 == 0:
            span.add_event("exception", {"exception.type": "ValueError", "exception.message": "boom"})
            span.set_status(trace.Status(trace.StatusCode.ERROR, "broken"))
        elif i % 5 == 0:
            span.set_status(trace.Status(trace.StatusCode.OK))
        span.end()
    return list(exporter.get_finished_spans())


def decoded(data: bytes) -> dict[str, Any]:
    message = ExportTraceServiceRequest()
    message.ParseFromString(data)
    result = MessageToDict(message)
    for resource_spans in result["resourceSpans"]:  # group order is not significant
        resource_spans["scopeSpans"].sort(key=lambda s: s["scope"].get("name", ""))
    return result


def test_same_message_as_the_official_encoder() -> None:
    batch = spans()
    assert decoded(encode_spans(batch)) == decoded(official_encode(batch).SerializeToString())


def test_the_caches_never_change_the_output() -> None:
    batch = spans()
    encoder = Encoder(span_export.mask_sql_literals)
    first = encoder.encode(batch)
    assert encoder.encode(batch) == first  # the second pass is served from the caches
    assert encoder.encode(batch[:5]) == Encoder(span_export.mask_sql_literals).encode(batch[:5])


def test_secrets_are_masked_while_encoding() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    span = provider.get_tracer("t").start_span("call sk-proj-Qw8vT2mLx9Rk4Zp7Hs1Nb6Yc3Jd5Fg0A")
    span.set_attributes(
        {
            "db.password": "hunter2hunter2",
            "http.request.header.authorization": ("Bearer abc.def.ghi",),
            "http.url": "https://api.example.com/v1?api_key=abc123def456&page=2",
            "db.statement": "SELECT * FROM users WHERE email = 'alice@example.com'",
            "note": "token=s3cr3t-t0ken-value",
        }
    )
    span.add_event("exception", {"exception.message": "AKIAZ7Q4M2N8V5X1C3B6 refused"})
    span.set_status(trace.Status(trace.StatusCode.ERROR, "password=hunter2hunter2"))
    span.end()
    data = Encoder(span_export.mask_sql_literals).encode(exporter.get_finished_spans())
    for secret in (
        b"sk-proj-Qw8v",
        b"hunter2",
        b"abc.def.ghi",
        b"abc123def456",
        b"alice@example.com",
        b"s3cr3t-t0ken",
        b"AKIAZ7Q4",
    ):
        assert secret not in data, secret
    (sent,) = decoded(data)["resourceSpans"][0]["scopeSpans"][0]["spans"]
    attributes = {a["key"]: a["value"] for a in sent["attributes"]}
    assert attributes["db.password"] == {"stringValue": redact.MASK}
    assert attributes["http.url"]["stringValue"].endswith(f"api_key={redact.MASK}&page=2")
    assert sent["status"]["message"] == f"password={redact.MASK}"


def test_the_exporter_sends_lean_bytes_through_the_official_transport() -> None:
    exporter = span_export.LeanOTLPExporter("http://127.0.0.1:9/v1/traces", timeout=1.0)

    class Client:
        def __init__(self) -> None:
            self.sent: list[bytes] = []

        def export(self, data: bytes) -> Any:
            self.sent.append(data)
            return type("Result", (), {"success": True})()

    client = Client()
    exporter._client = client
    batch = spans()
    assert exporter.export(batch).name == "SUCCESS"
    assert decoded(client.sent[0]) == decoded(official_encode(batch).SerializeToString())


def test_a_redaction_rule_added_later_applies_to_attributes_already_encoded() -> None:
    """The encoder remembers encoded attributes; new rules must not be bypassed by that memory."""
    from lightkeeper.sdk import redact
    from lightkeeper.sdk.otlp_encoder import Encoder

    encoder = Encoder(lambda sql: sql)
    first = encoder._attributes(9, {"tenant.label": "ACME-12345678"})
    assert b"ACME-12345678" in first
    try:
        redact.configure(patterns=[r"ACME-[0-9]{8}"])
        second = encoder._attributes(9, {"tenant.label": "ACME-12345678"})
        assert b"ACME-12345678" not in second
        assert redact.MASK.encode() in second
    finally:
        redact.configure()
