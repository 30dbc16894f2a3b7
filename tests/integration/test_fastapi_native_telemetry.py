"""FastAPI >= 0.142 emits its own OpenTelemetry spans and `http.server.*` metrics once a
provider is configured; with Lightkeeper on the app nothing may be recorded twice.

Each case runs in a fresh interpreter: OpenTelemetry providers are process-global.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.support.services import ROOT

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    import httpx
    from fastapi import FastAPI
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int):
        return {"id": item_id}

    if sys.argv[1] == "lightkeeper":
        import lightkeeper
        from lightkeeper.testing import capture_logs
        lightkeeper.instrument(app, service="native", environment="test", version="1")

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for i in range(3):
                assert (await client.get(f"/items/{i}")).status_code == 200

    asyncio.run(go())
    provider.force_flush()
    data = reader.get_metrics_data()
    names = [m.name for rm in (data.resource_metrics if data else []) for sm in rm.scope_metrics
             for m in sm.metrics]
    spans = [(s.instrumentation_scope.name if s.instrumentation_scope else "", s.kind.name, s.name)
             for s in exporter.get_finished_spans()]
    print("RESULT" + json.dumps({"otel_metrics": names, "spans": spans}))
    """
)


def run(variant: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, variant],
        capture_output=True,
        text=True,
        cwd=str(ROOT),
        timeout=120,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT"))
    return json.loads(line[len("RESULT") :])


def test_plain_fastapi_records_its_own_telemetry() -> None:
    # The control: without this, the assertion below could pass for the wrong reason.
    result = run("plain")
    assert "http.server.request.duration" in result["otel_metrics"]
    assert [s for s in result["spans"] if s[0] == "fastapi" and s[1] == "SERVER"]


def test_instrumented_fastapi_records_each_request_once() -> None:
    result = run("lightkeeper")
    assert not [m for m in result["otel_metrics"] if m.startswith("http.server")], result
    assert not [s for s in result["spans"] if s[0] == "fastapi"], result
    server_spans = [s for s in result["spans"] if s[1] == "SERVER"]
    assert len(server_spans) <= 3, "at most one server span per request"
