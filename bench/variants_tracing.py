"""Lightkeeper with every signal on: metrics, logs, traces exported over OTLP, Sentry.

Imported by bench/overhead.py, which runs each variant in its own worker process.
Unlike the anchors (whose exporters drop spans and events in memory), spans here go
through the real OTLP/HTTP exporter (protobuf encoding, HTTP) and errors through
sentry-sdk's real HTTP transport, to receivers running in a separate process started
by the variant itself (so their CPU is not the app's).

    .venv/bin/python bench/overhead.py --variants stack,otel,sentry,lightkeeper_all_10,lightkeeper_all_100

Variants:
* lightkeeper_all_10 / lightkeeper_all_100: traces sampled at 10 % / 100 %, Sentry on.
  Repeated identical failures are subject to the default per-fingerprint budget (10
  events a minute), which is what production runs with.
* lightkeeper_all_10_every_error: the budget off, so every failing request builds and
  sends a Sentry event (the cost of a first occurrence).

    .venv/bin/python bench/variants_tracing.py --receivers      # what each variant starts
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_receivers: dict[str, str] = {}


def receivers() -> dict[str, str]:
    """Start (once per process) the OTLP and Sentry receivers in a child process."""
    if not _receivers:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--receivers"],
            stdout=subprocess.PIPE,
            stdin=subprocess.PIPE,
            text=True,
            cwd=str(ROOT),
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the bench receivers did not start")
        _receivers.update(json.loads(line))

        def stop() -> None:
            proc.terminate()
            proc.wait(timeout=5)

        atexit.register(stop)
    return _receivers


def _all_signals(rate: float, every_error: bool = False, app: Any = None) -> Any:
    import lightkeeper
    from bench.variants import base_app

    sinks = receivers()
    app = app if app is not None else base_app()
    extra: dict[str, Any] = {}
    if every_error:
        extra["sentry_events_per_fingerprint_per_minute"] = 0  # no limit
    lightkeeper.instrument(
        app,
        service="bench",
        environment="bench",
        version="0",
        otlp_endpoint=sinks["otlp"],
        trace_sample_rate=rate,
        sentry_dsn=sinks["sentry"],
        **extra,
    )
    return app


def build_lightkeeper_all_10(app: Any = None) -> Any:
    return _all_signals(0.1, app=app)


def build_lightkeeper_all_100(app: Any = None) -> Any:
    return _all_signals(1.0, app=app)


def build_lightkeeper_all_10_every_error(app: Any = None) -> Any:
    return _all_signals(0.1, every_error=True, app=app)


VARIANTS: dict[str, tuple[str, Callable[..., Any]]] = {
    "lightkeeper_all_10": (
        "lightkeeper: metrics + logs + request id + traces at 10 % (real OTLP/HTTP export to a local "
        "receiver) + Sentry (real HTTP transport to a local receiver)",
        build_lightkeeper_all_10,
    ),
    "lightkeeper_all_100": ("lightkeeper_all_10 with traces at 100 %", build_lightkeeper_all_100),
    "lightkeeper_all_10_every_error": (
        "lightkeeper_all_10 with the per-fingerprint Sentry budget off: every failure is sent",
        build_lightkeeper_all_10_every_error,
    ),
}


def _serve_receivers() -> None:
    import time

    from tests.support.receivers import OTLPReceiver, SentryReceiver

    devnull = os.open(os.devnull, os.O_WRONLY)
    with OTLPReceiver(keep=False) as otlp, SentryReceiver(keep=False) as sentry:
        print(json.dumps({"otlp": otlp.endpoint, "sentry": sentry.dsn}), flush=True)
        os.dup2(devnull, 1)
        try:
            sys.stdin.read()  # until the parent goes away
        finally:
            time.sleep(0)


if __name__ == "__main__" and "--receivers" in sys.argv:
    _serve_receivers()


# --------------------------------------------------------------------------------------
# Per-library span cost: contrib instrumentations against Lightkeeper's own where both
# exist, so the choice in lightkeeper.sdk.integrations.otel can be re-checked.
#
#     .venv/bin/python bench/variants_tracing.py --libraries


def _library_costs(rounds: int = 5, n: int = 2000) -> list[tuple[str, float, float]]:
    """(case, median µs per call, min µs per call), each case in a fresh interpreter."""
    import statistics

    out = []
    for case in _LIBRARY_CASES:
        samples = []
        for _ in range(rounds):
            result = subprocess.run(
                [sys.executable, __file__, "--library-case", case, str(n)],
                capture_output=True,
                text=True,
                cwd=str(ROOT),
                check=True,
            )
            samples.append(float(result.stdout.strip().splitlines()[-1]))
        out.append((case, statistics.median(samples), min(samples)))
    return out


_LIBRARY_CASES = (
    "sqlalchemy:none",
    "sqlalchemy:metrics",
    "sqlalchemy:metrics+lightkeeper",
    "sqlalchemy:metrics+contrib",
    "redis:none",
    "redis:metrics",
    "redis:metrics+contrib",
    "server:fastapi-native",
    "server:lightkeeper-metrics-only",
    "server:lightkeeper",
)


def _provider() -> Any:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from bench.variants import _DropSpans

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_DropSpans()))  # type: ignore[arg-type]
    trace.set_tracer_provider(provider)
    return provider


def _run_library_case(case: str, n: int) -> float:
    import time

    library, mode = case.split(":")
    if library == "server":
        return _server_case(mode, n)
    provider = _provider()
    tracer = provider.get_tracer("bench")
    if library == "sqlalchemy":
        from sqlalchemy import create_engine, text

        import lightkeeper

        engine = create_engine("sqlite://")
        if mode != "none":
            lightkeeper.instrument_sqlalchemy(engine)
        if mode.endswith("+lightkeeper"):
            from lightkeeper.sdk.integrations import otel

            otel.enable(provider)
        elif mode.endswith("+contrib"):
            from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
            from opentelemetry.metrics import NoOpMeterProvider

            counter = NoOpMeterProvider().get_meter("x").create_up_down_counter("x")
            EngineTracer(provider.get_tracer("contrib"), engine, counter)
        statement = text("SELECT 1")
        with engine.connect() as conn, tracer.start_as_current_span("request"):
            for _ in range(200):
                conn.execute(statement)
            start = time.perf_counter()
            for _ in range(n):
                conn.execute(statement)
            return (time.perf_counter() - start) / n * 1e6
    import redis

    import lightkeeper

    client = redis.Redis(host="127.0.0.1", port=6379, db=8)
    if mode != "none":
        lightkeeper.instrument_redis(client)
    if mode.endswith("+contrib"):
        from lightkeeper.sdk.integrations import otel

        otel.enable(provider)  # the Redis contrib instrumentation, as instrument() would wire it
    with tracer.start_as_current_span("request"):
        for _ in range(200):
            client.get("lk-bench")
        start = time.perf_counter()
        for _ in range(n):
            client.get("lk-bench")
        return (time.perf_counter() - start) / n * 1e6


def _server_case(mode: str, n: int) -> float:
    """One request's server span: FastAPI's native telemetry against Lightkeeper's middleware."""
    import asyncio
    import time

    from bench.overhead import ITEM_PATH, _drive
    from bench.variants import base_app

    provider = _provider()
    app = base_app()
    if mode.startswith("lightkeeper"):
        import lightkeeper
        from lightkeeper.sdk import server_span

        # Metrics stay on (they are what lightkeeper always records); logs are off on both sides.
        lightkeeper.instrument(
            app, service="bench", environment="bench", version="0", access_log=False, configure_logging=False
        )
        runtime = app._lightkeeper_runtime
        runtime.tracing = (
            None
            if mode.endswith("metrics-only")
            else server_span.ServerTracing(provider.get_tracer("lightkeeper"))
        )
    loop = asyncio.new_event_loop()
    loop.run_until_complete(_drive(app, ITEM_PATH, 300))
    start = time.perf_counter()
    loop.run_until_complete(_drive(app, ITEM_PATH, n))
    return (time.perf_counter() - start) / n * 1e6


if __name__ == "__main__" and "--library-case" in sys.argv:
    at = sys.argv.index("--library-case")
    print(f"{_run_library_case(sys.argv[at + 1], int(sys.argv[at + 2])):.2f}")
elif __name__ == "__main__" and "--libraries" in sys.argv:
    print("| case | µs/call median | min |\n|---|---:|---:|")
    for case, median, low in _library_costs():
        print(f"| {case} | {median:.1f} | {low:.1f} |")
