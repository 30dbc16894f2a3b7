"""OTLP span encoding: lightkeeper's direct wire encoder next to the official one.

Run from the repository root:

    .venv/bin/python bench/otlp_encoder.py [--spans 512] [--rounds 9]

Both encoders get the same finished spans: HTTP server spans shaped like the ones the
middleware records (six attributes, a handful of routes and status codes, as a real
service repeats them). The official encoder is
`opentelemetry.exporter.otlp.proto.common.trace_encoder.encode_spans` followed by
`SerializeToString()`, which is what the OTLP/HTTP exporter sends. Rounds alternate
between the two so a burst of load on a shared machine hits both; the table shows the
median CPU µs per span and the ratio. Both outputs decode to the same spans (checked
before timing).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as official_encode
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from lightkeeper.sdk.otlp_encoder import encode_spans as lightkeeper_encode

ROUTES = ("/api/items/{item_id}", "/api/items", "/api/users/{user_id}", "/health/ready")
STATUSES = (200, 200, 200, 201, 404, 500)


def make_spans(count: int) -> Sequence[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "bench", "deployment.environment": "b"})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")
    for i in range(count):
        route = ROUTES[i % len(ROUTES)]
        with tracer.start_as_current_span(f"GET {route}", kind=SpanKind.SERVER) as span:
            span.set_attribute("http.request.method", "GET")
            span.set_attribute("http.route", route)
            span.set_attribute("url.path", route.replace("{item_id}", "42").replace("{user_id}", "7"))
            span.set_attribute("http.response.status_code", STATUSES[i % len(STATUSES)])
            span.set_attribute("server.address", "api.internal")
            span.set_attribute("lightkeeper.request_id", f"req-{i % 64:04d}")
    provider.shutdown()
    return exporter.get_finished_spans()


def _official(spans: Sequence[ReadableSpan]) -> bytes:
    encoded: bytes = official_encode(spans).SerializeToString()
    return encoded


def _lightkeeper(spans: Sequence[ReadableSpan]) -> bytes:
    encoded: bytes = lightkeeper_encode(spans)
    return encoded


CANDIDATES: dict[str, Callable[[Sequence[ReadableSpan]], bytes]] = {
    "opentelemetry-exporter-otlp (official)": _official,
    "lightkeeper.sdk.otlp_encoder": _lightkeeper,
}


def _decoded(data: bytes) -> list[tuple[str, int, dict[str, Any]]]:
    message = ExportTraceServiceRequest.FromString(data)
    out = []
    for resource_spans in message.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attrs = {a.key: a.value.WhichOneof("value") for a in span.attributes}
                out.append((span.name, span.kind, attrs))
    return sorted(out, key=repr)


def check_same_output(spans: Sequence[ReadableSpan]) -> None:
    """Refuse to time encoders that do not produce the same spans."""
    official, ours = (_decoded(encode(spans)) for encode in CANDIDATES.values())
    if [(n, k, sorted(a)) for n, k, a in official] != [(n, k, sorted(a)) for n, k, a in ours]:
        raise SystemExit("the encoders disagree on the spans; fix that before comparing speed")


def measure(spans: Sequence[ReadableSpan], rounds: int) -> dict[str, float]:
    """Median CPU microseconds per span for each candidate, rounds interleaved."""
    samples: dict[str, list[float]] = {name: [] for name in CANDIDATES}
    for encode in CANDIDATES.values():
        encode(spans)  # warm caches and imports, as a running exporter would be
    for _ in range(rounds):
        for name, encode in CANDIDATES.items():
            start = time.process_time()
            encode(spans)
            samples[name].append((time.process_time() - start) / len(spans) * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    spans = make_spans(args.spans)
    check_same_output(spans)
    result = measure(spans, args.rounds)
    official = result["opentelemetry-exporter-otlp (official)"]
    print(f"{args.spans} server spans x {args.rounds} rounds, median CPU time per span")
    print(f"{'encoder':<42} {'µs/span':>8} {'vs official':>12}")
    for name, micros in result.items():
        print(f"{name:<42} {micros:>8.1f} {micros / official:>11.2f}x")


if __name__ == "__main__":
    main()
