"""Tracing in-process (lightkeeper.sdk.trace_provider, server_span, span_export,
log_correlation): endpoint resolution, the server span the middleware makes, trace ids in
logs, exemplars, redaction and failure counting in the exporter.

OpenTelemetry's global provider can be set once per process, so these tests give the
middleware a private provider (`ServerTracing(provider.get_tracer(...))`) with an
in-memory exporter; the real OTLP path is tested in tests/integration/test_tracing.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, StatusCode

import lightkeeper
from lightkeeper import catalogue
from lightkeeper.sdk import log_correlation, redact, server_span, span_export, trace_provider, tracing
from lightkeeper.sdk import logs as lk_logging
from lightkeeper.sdk.settings import SettingsError, load_settings
from lightkeeper.testing import capture_logs, capture_metrics
from tests.support.services import ROOT

FAILURES = catalogue.TELEMETRY_EXPORT_FAILURES.name
INBOUND_TRACE = "0af7651916cd43dd8448eb211c80319c"
INBOUND_SPAN = "b7ad6b7169203331"
BEARER = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyXzQyIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
OPENAI_KEY = "sk-proj-Qw8vT2mLx9Rk4Zp7Hs1Nb6Yc3Jd5Fg0A"


# ------------------------------------------------------------------ endpoint resolution


@pytest.fixture
def clean_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "LIGHTKEEPER_OTLP_ENDPOINT",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("clean_otel_env")
def test_endpoint_from_the_setting_gets_the_traces_path_once() -> None:
    assert tracing.otlp_endpoint(load_settings(otlp_endpoint="http://collector:4318")) == (
        "http://collector:4318/v1/traces"
    )
    assert tracing.otlp_endpoint(load_settings(otlp_endpoint="http://collector:4318/")) == (
        "http://collector:4318/v1/traces"
    )
    assert tracing.otlp_endpoint(load_settings(otlp_endpoint="https://c:4318/v1/traces")) == (
        "https://c:4318/v1/traces"
    )


@pytest.mark.usefixtures("clean_otel_env")
def test_endpoint_from_opentelemetry_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    assert tracing.otlp_endpoint(load_settings()) is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318")
    assert tracing.otlp_endpoint(load_settings()) == "http://base:4318/v1/traces"
    # The signal-specific variable is a full URL, used as given.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:9999/custom")
    assert tracing.otlp_endpoint(load_settings()) == "http://traces:9999/custom"
    # Lightkeeper's own setting wins over both.
    assert tracing.otlp_endpoint(load_settings(otlp_endpoint="http://mine:4318")) == (
        "http://mine:4318/v1/traces"
    )


def test_a_bad_endpoint_fails_at_start_without_echoing_it() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(otlp_endpoint="collector:4318?token=hunter2hunter2")
    assert "otlp_endpoint" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_without_an_endpoint_nothing_is_installed() -> None:
    # A fresh interpreter, so no earlier test's provider is around.
    script = textwrap.dedent(
        """
        import asyncio, sys, threading
        import httpx
        from fastapi import FastAPI
        from opentelemetry import trace
        import lightkeeper
        app = FastAPI()

        @app.get("/x")
        async def x():
            return {}

        lightkeeper.instrument(app, service="t", environment="test")

        async def go():
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
                assert (await c.get("/x")).status_code == 200

        asyncio.run(go())
        print("RUNTIME", app._lightkeeper_runtime.tracing)
        print("PROVIDER", type(trace.get_tracer_provider()).__name__)
        # the batch flushers (metrics, request lines) are not tracing's: any other thread is an exporter
        others = [t for t in threading.enumerate() if not t.name.startswith("lightkeeper-flush-")]
        print("THREADS", sorted(t.name for t in others if t is not threading.main_thread()))
        print("SENTRY", "sentry_sdk" in sys.modules)
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LIGHTKEEPER_", "SENTRY_"))}
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=str(ROOT),
        env=env,
        timeout=120,
        check=True,
    ).stdout
    assert "RUNTIME None" in out  # the middleware's per-request test is one `is None`
    assert "PROVIDER ProxyTracerProvider" in out
    assert "THREADS []" in out
    assert "SENTRY False" in out


def test_a_provider_the_application_sets_up_later_is_used_never_doubled() -> None:
    # instrument() first, the application's own OpenTelemetry set-up afterwards (in its
    # lifespan, say): the first request finds the provider. Fresh interpreter: the
    # global provider can be set once per process.
    script = textwrap.dedent(
        """
        import asyncio, json
        import httpx
        from fastapi import FastAPI
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        import lightkeeper

        app = FastAPI()

        @app.get("/x/{n}")
        async def x(n: int):
            return {}

        lightkeeper.instrument(app, service="late", environment="test")
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)

        async def go():
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
                for n in range(3):
                    assert (await c.get(f"/x/{n}")).status_code == 200

        asyncio.run(go())
        spans = exporter.get_finished_spans()
        print("SPANS", json.dumps([(s.instrumentation_scope.name, s.name) for s in spans]))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LIGHTKEEPER_", "SENTRY_"))}
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=str(ROOT),
        env=env,
        timeout=120,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("SPANS"))
    assert json.loads(line[len("SPANS") :]) == [["lightkeeper", "GET /x/{n}"]] * 3


# -------------------------------------------------------------------- the server span


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        import structlog

        structlog.get_logger("test").info("item_read", item_id=item_id)
        return {"id": item_id}

    @app.get("/fail")
    async def fail() -> None:
        raise RuntimeError(f"upstream said no: Authorization: {BEARER}")

    @app.get("/health-ish")
    async def excluded() -> dict[str, str]:
        return {"ok": "yes"}

    return app


class Traced:
    def __init__(self, rate: float = 1.0) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(rate)))
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.app = make_app()
        lightkeeper.instrument(
            self.app,
            service="unit",
            environment="test",
            version="1",
            excluded_paths=("/health-ish", "/metrics"),
        )
        runtime = self.app._lightkeeper_runtime  # type: ignore[attr-defined]
        runtime.tracing = server_span.ServerTracing(self.provider.get_tracer("lightkeeper"))
        if tracing.record_exception not in runtime.exception_hooks:
            runtime.exception_hooks.insert(0, tracing.record_exception)
        lk_logging.add_processor(log_correlation.add_trace_ids)

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await client.get(path, headers=headers)

        return asyncio.run(go())

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())


def test_one_server_span_per_request_named_after_the_route() -> None:
    traced = Traced()
    with capture_logs() as logs:
        response = traced.get("/items/7?token=hunter2hunter2&page=2")
    assert response.status_code == 200
    (span,) = traced.spans()
    assert span.name == "GET /items/{item_id}"
    assert span.kind is SpanKind.SERVER
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/items/{item_id}"
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["url.path"] == "/items/7"
    assert span.attributes["lightkeeper.request_id"] == response.headers["x-request-id"]
    # Never the query string, headers or body.
    assert "hunter2" not in repr(dict(span.attributes))
    assert not [k for k in span.attributes if k.startswith(("url.query", "http.request.header"))]
    # Every line inside the request carries the span's ids.
    ids = (format(span.context.trace_id, "032x"), format(span.context.span_id, "016x"))
    lines = [line for line in logs if line["event"] in ("item_read", "http_request")]
    assert len(lines) == 2
    assert {(line["trace_id"], line["span_id"]) for line in lines} == {ids}


def test_inbound_traceparent_is_continued() -> None:
    traced = Traced(rate=0.0)  # the parent's decision wins over the ratio
    traced.get("/items/1", headers={"traceparent": f"00-{INBOUND_TRACE}-{INBOUND_SPAN}-01"})
    (span,) = traced.spans()
    assert format(span.context.trace_id, "032x") == INBOUND_TRACE
    assert span.parent is not None and format(span.parent.span_id, "016x") == INBOUND_SPAN


def test_unsampled_requests_export_nothing_but_logs_keep_the_trace_id() -> None:
    traced = Traced(rate=0.0)
    with capture_logs() as logs, capture_metrics() as delta:
        traced.get("/items/1")
    assert traced.spans() == []
    line = next(x for x in logs if x["event"] == "http_request")
    # The trace id still travels downstream (traceparent) and correlates logs.
    assert line["trace_id"] is not None and len(line["trace_id"]) == 32
    assert delta.value(FAILURES) == 0


def test_a_failing_request_marks_the_span_and_redacts_the_exception() -> None:
    traced = Traced()
    with capture_logs():
        assert traced.get("/fail").status_code == 500
    (span,) = traced.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None and span.attributes["error.type"] == "RuntimeError"
    (event,) = [e for e in span.events if e.name == "exception"]
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "RuntimeError"
    assert "upstream said no" in str(event.attributes["exception.message"])
    assert "eyJ" not in str(event.attributes["exception.message"])
    assert "eyJ" not in str(event.attributes["exception.stacktrace"])
    # The span ends after the exception was attached, not when the 500 was sent.
    assert span.end_time is not None and span.start_time is not None


def test_excluded_paths_and_health_endpoints_make_no_span() -> None:
    traced = Traced()
    with capture_logs():
        traced.get("/health-ish")
        traced.get("/health/live")
        traced.get("/metrics")
    assert traced.spans() == []


def test_duration_histogram_carries_trace_id_exemplars_in_openmetrics() -> None:
    traced = Traced()
    with capture_logs():
        traced.get("/items/5")
        (span,) = traced.spans()
        text = traced.get("/metrics", headers={"accept": "application/openmetrics-text"}).text
        plain = traced.get("/metrics").text
    trace_id = format(span.context.trace_id, "032x")
    bucket_lines = [
        line
        for line in text.splitlines()
        if line.startswith("http_request_duration_seconds_bucket") and trace_id in line
    ]
    assert bucket_lines, "no exemplar with the request's trace id"
    assert '# {trace_id="' in bucket_lines[0]
    assert "# {trace_id=" not in plain  # the Prometheus text format has no exemplars


def test_fastapi_native_tracing_is_switched_off() -> None:
    app = make_app()
    lightkeeper.instrument(app, service="unit", environment="test")
    assert app._telemetry["tracing"] is False
    assert app._telemetry["operation_spans"] is False


def test_log_lines_outside_any_span_keep_null_ids() -> None:
    lk_logging.add_processor(log_correlation.add_trace_ids)
    with capture_logs() as logs:
        import structlog

        structlog.get_logger("test").info("no_span_here")
    assert logs[-1]["trace_id"] is None and logs[-1]["span_id"] is None


def test_trace_ids_of_a_span_started_in_application_code() -> None:
    provider = TracerProvider()
    with provider.get_tracer("app").start_as_current_span("work") as span:
        ids = tracing.trace_ids()
    assert ids == (
        format(span.get_span_context().trace_id, "032x"),
        format(span.get_span_context().span_id, "016x"),
    )
    assert tracing.trace_ids() is None


# ------------------------------------------------------------------ sampler


def test_sampler_is_parent_based_ratio_and_can_be_retuned() -> None:
    sampler = trace_provider.make_sampler(0.0)
    provider = TracerProvider(sampler=sampler)
    tracer = provider.get_tracer("t")
    assert not tracer.start_span("root").get_span_context().trace_flags.sampled
    parent = trace.NonRecordingSpan(
        trace.SpanContext(
            int(INBOUND_TRACE, 16), int(INBOUND_SPAN, 16), True, trace.TraceFlags(trace.TraceFlags.SAMPLED)
        )
    )
    child = tracer.start_span("child", context=trace.set_span_in_context(parent))
    assert child.get_span_context().trace_flags.sampled
    sampler.retune(1.0)  # tracers created before see the new rate
    assert tracer.start_span("root").get_span_context().trace_flags.sampled
    assert "TraceIdRatioBased{1.0}" in sampler.get_description()


# ------------------------------------------------------------------ exporter


class Recording:
    """An exporter that keeps what it receives, or fails as told."""

    def __init__(self, result: Any = SpanExportResult.SUCCESS, raises: bool = False) -> None:
        self.batches: list[Sequence[ReadableSpan]] = []
        self.result = result
        self.raises = raises
        self.release = threading.Event()
        self.entered = threading.Event()
        self.block = False

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        self.entered.set()
        if self.block:
            self.release.wait(10)
        self.batches.append(spans)
        if self.raises:
            raise ConnectionError("collector unreachable")
        return self.result

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def finished_span(build: Any) -> ReadableSpan:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    span = provider.get_tracer("t").start_span("GET /login")
    build(span)
    span.end()
    (found,) = exporter.get_finished_spans()
    return found


def test_the_exporter_masks_secrets_in_every_part_of_a_span() -> None:
    def build(span: Any) -> None:
        span.update_name(f"call {OPENAI_KEY}")
        span.set_attributes(
            {
                "http.request.header.authorization": (BEARER,),
                "http.request.header.x-trace-note": ("plain",),
                "url.full": "https://u:pa55word@api.example.com/v1?api_key=abc123def456&page=2",
                "user.password": "hunter2hunter2",
                "db.statement": "SELECT * FROM users WHERE email = 'alice@example.com' AND id = 42",
                "app.note": f"token={OPENAI_KEY}",
                "http.response.status_code": 200,
            }
        )
        span.add_event("exception", {"exception.message": f"bad key {OPENAI_KEY}"})
        span.set_status(trace.Status(StatusCode.ERROR, f"Authorization: {BEARER}"))

    original = finished_span(build)
    inner = Recording()
    exporter = tracing.RedactingSpanExporter(lambda: inner)
    assert exporter.export([original]) is SpanExportResult.SUCCESS
    (sent,) = inner.batches[0]
    attrs = dict(sent.attributes or {})
    assert attrs["http.request.header.authorization"] == redact.MASK
    assert attrs["http.request.header.x-trace-note"] == ("plain",)
    assert "pa55word" not in attrs["url.full"] and "abc123def456" not in attrs["url.full"]
    assert attrs["url.full"].endswith("page=2")
    assert attrs["user.password"] == redact.MASK
    assert "alice@example.com" not in attrs["db.statement"]
    assert attrs["db.statement"].startswith("SELECT * FROM users WHERE email = ")
    assert OPENAI_KEY not in attrs["app.note"]
    assert attrs["http.response.status_code"] == 200
    everything = repr(
        (sent.name, attrs, [dict(e.attributes or {}) for e in sent.events], sent.status.description)
    )
    for secret in (OPENAI_KEY, "eyJhbGci", "hunter2", "pa55word"):
        assert secret not in everything
    assert sent.context == original.context and sent.start_time == original.start_time
    # The span the application holds is untouched.
    assert (original.attributes or {})["user.password"] == "hunter2hunter2"


def test_clean_spans_are_passed_through_as_they_are() -> None:
    clean = finished_span(lambda span: span.set_attributes({"http.route": "/items/{id}", "n": 3}))
    inner = Recording()
    tracing.RedactingSpanExporter(lambda: inner).export([clean])
    assert inner.batches[0][0] is clean


@pytest.mark.parametrize("inner", [Recording(result=SpanExportResult.FAILURE), Recording(raises=True)])
def test_failed_exports_are_counted_never_raised(inner: Recording) -> None:
    spans = [finished_span(lambda span: None) for _ in range(3)]
    with capture_metrics() as delta:
        result = tracing.RedactingSpanExporter(lambda: inner).export(spans)
    assert result is SpanExportResult.FAILURE
    assert delta.value(FAILURES, exporter="otlp") == 3


def test_without_a_destination_spans_are_dropped_quietly() -> None:
    exporter = tracing.RedactingSpanExporter(None)
    with capture_metrics() as delta:
        assert exporter.export([finished_span(lambda span: None)]) is SpanExportResult.SUCCESS
    assert delta.value(FAILURES) == 0


def test_spans_dropped_by_a_full_queue_are_counted() -> None:
    inner = Recording()
    inner.block = True  # the collector hangs: the first batch never returns
    processor = span_export.make_processor(
        tracing.RedactingSpanExporter(lambda: inner),
        1.0,
        max_queue_size=4,
        max_export_batch_size=2,
        schedule_delay_millis=60_000,
    )
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    try:
        for _ in range(2):
            tracer.start_span("s").end()  # a full batch: the worker takes it and hangs in export
        assert inner.entered.wait(5)
        with capture_metrics() as delta:
            for _ in range(4 + 10):
                tracer.start_span("s").end()
        assert delta.value(FAILURES, exporter="otlp") == 10
    finally:
        inner.release.set()
        processor.shutdown()


def test_the_exporter_is_rebuilt_in_a_forked_child() -> None:
    built: list[int] = []

    def factory() -> Recording:
        built.append(os.getpid())
        return Recording()

    exporter = tracing.RedactingSpanExporter(factory)
    parent_inner = exporter._inner
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report whether it has its own exporter, then leave at once
        ok = exporter._inner is not parent_inner and built[-1] == os.getpid()
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    assert exporter._inner is parent_inner  # the parent keeps its own
    assert os.WEXITSTATUS(status) == 0


def test_record_exception_outside_a_recording_span_does_nothing() -> None:
    tracing.record_exception(ValueError("no span"))  # must not raise


@pytest.fixture(autouse=True)
def _no_global_provider_installed() -> Iterator[None]:
    yield
    # These tests use private providers; one that installed the global provider would
    # leak an exporter thread and a sampler into every later test of the session.
    assert trace_provider._installed is None


# ------------------------------------------------------------------ contrib versions


def test_an_unsupported_contrib_version_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    from lightkeeper.sdk.integrations import otel, patching

    real = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata,
        "version",
        lambda name: "0.30b0" if name == "opentelemetry-instrumentation-redis" else real(name),
    )
    with pytest.raises(
        patching.MissingDependencyError, match=r"opentelemetry-instrumentation-redis>=0\.46b0"
    ):
        otel._contrib("redis")


def test_a_library_the_contrib_does_not_support_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    # OpenTelemetry's own instrument() only logs this and records nothing.
    from opentelemetry.instrumentation import dependencies

    from lightkeeper.sdk.integrations import otel

    monkeypatch.setattr(
        dependencies,
        "get_dependency_conflicts",
        lambda deps: dependencies.DependencyConflict("redis >= 99", "redis 8.1.0"),
    )
    with pytest.raises(otel.TracingSetupError, match="will not patch it silently"):
        otel._contrib("redis")
