"""Drives one freshly instrumented web process through every path that emits a metric.

    python -m tests.integration.catalogue_driver   (started by test_catalogue_emitted.py)

A process of its own, so no other test's metrics count. The environment supplies the
real backends: PostgreSQL (PG_URL), Redis, an OTLP endpoint nothing listens on, a local
Sentry receiver with a per-fingerprint budget of one event, and INFO sampling below 1.
Every sample of the default registry is written as JSON `[[name, labels, value], ...]` to the
file named by LK_CATALOGUE_OUT: stdout carries the process's JSON log lines.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis
import requests
import sqlalchemy as sa
import structlog
from prometheus_client import REGISTRY
from starlette.testclient import TestClient

import lightkeeper
from tests.support import services

REPEATED_FAILURES = 3  # beyond the Sentry budget of one event per fingerprint
INFO_LINES = 60  # at a sample rate of 0.5, all kept with probability 2**-60


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def drive_web() -> None:
    os.environ["LIGHTKEEPER_RUM_ENABLED"] = "true"  # off by default; its signals must be exercised
    from tests.apps import core_app  # instruments on import, from the environment's settings

    client = TestClient(core_app.app, raise_server_exceptions=False)
    client.get("/items/1")
    client.post("/items", content=b"x" * 300)
    for _ in range(1 + REPEATED_FAILURES):
        client.get("/fail")
    client.get("/stream")
    client.get("/health/ready")
    lightkeeper.usage("content_item_created")
    with contextlib.suppress(ValueError):  # refused (dev is strict), and counted as dropped
        lightkeeper.usage("content_item_created", plan="undeclared")
    lightkeeper.auth_attempt(outcome="failure", method="password")
    with lightkeeper.track_dependency("email", "send"):
        pass
    lightkeeper.cache_hit("pages")
    lightkeeper.cache_miss("pages")
    beacon = {
        "page": "/items/{item_id}",
        "device": "desktop",
        "vitals": {"lcp": 1200, "inp": 80, "cls": 0.01, "fcp": 700, "ttfb": 90},
        "errors": [{"kind": "error", "name": "TypeError", "message": "x is undefined"}],
    }
    browser = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0", "content-type": "text/plain"}
    client.post("/lightkeeper/rum", content=json.dumps(beacon), headers=browser)
    bot = {**browser, "user-agent": "Googlebot"}
    client.post("/lightkeeper/rum", content=json.dumps(beacon), headers=bot)  # refused, counted


def drive_logs() -> None:
    log = structlog.get_logger("catalogue_driver")
    for i in range(INFO_LINES):
        log.info("tick", i=i)


def drive_database() -> None:
    url = os.environ["PG_URL"].replace("postgresql://", "postgresql+psycopg://")
    engine = sa.create_engine(url, pool_size=1)
    lightkeeper.instrument_sqlalchemy(engine, slow_query_seconds=0.001)
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_sleep(0.01)"))
        with contextlib.suppress(sa.exc.DBAPIError):
            conn.execute(sa.text("SELECT * FROM no_such_table"))
    engine.dispose()


def drive_workflow() -> None:
    """One workflow sample: an entity and an aggregate that succeed, one aggregate that fails."""
    from lightkeeper.workflow import Aggregate, Entity

    url = os.environ["PG_URL"].replace("postgresql://", "postgresql+psycopg://")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE wf_items (status text, updated_at timestamptz)")
        conn.exec_driver_sql(
            "INSERT INTO wf_items VALUES ('running', now() - interval '1 hour'), ('done', now())"
        )
    engine.dispose()
    sampler = lightkeeper.instrument_workflow(
        url,
        entities=[Entity("wf_items", processing=["running"], terminal=["done"])],
        aggregates=[
            Aggregate("wf_total", "SELECT count(*) FROM wf_items"),
            Aggregate("wf_broken", "SELECT x"),
        ],
        background=False,
    )
    sampler.sample_once()  # left running: stop() would remove the series this process reports


def drive_redis() -> None:
    r = redis.Redis(host=services.REDIS_HOST, port=services.REDIS_PORT)
    lightkeeper.instrument_redis(r)
    r.ping()
    with contextlib.suppress(redis.RedisError):
        r.execute_command("NO_SUCH_COMMAND")  # type: ignore[no-untyped-call]
    r.close()


def drive_http_clients() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ok_url = f"http://127.0.0.1:{server.server_address[1]}/"
    closed_url = f"http://127.0.0.1:{services.closed_port()}/"
    lightkeeper.instrument_httpx()
    lightkeeper.instrument_requests()
    try:
        with httpx.Client(timeout=2) as c:
            c.get(ok_url)
            with contextlib.suppress(httpx.HTTPError):
                c.get(closed_url)
        requests.get(ok_url, timeout=2)
        with contextlib.suppress(requests.RequestException):
            requests.get(closed_url, timeout=2)
    finally:
        server.shutdown()


def drive_llm() -> None:
    """OpenAI calls against the local fake: priced, streamed, failed and unpriced."""
    import openai

    from tests.support.llm_fake import LLMFake

    with LLMFake() as fake:
        client = openai.OpenAI(base_url=f"{fake.url}/v1", api_key="sk-test", max_retries=0)
        lightkeeper.instrument_openai(client)
        prompt: Any = [{"role": "user", "content": "hi"}]
        client.chat.completions.create(model="gpt-4o", messages=prompt)
        list(
            client.chat.completions.create(
                model="gpt-4o",
                messages=prompt,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        client.chat.completions.create(model="unknown-model-x", messages=prompt)
        fake.fail_next(429)
        with contextlib.suppress(openai.RateLimitError):
            client.chat.completions.create(model="gpt-4o", messages=prompt)
        client.close()
    drive_llm_shipping()


def drive_llm_shipping() -> None:
    """Cost events for a server that is not there: a tiny buffer overflows and drops are counted."""
    from lightkeeper.sdk.llm import events
    from lightkeeper.sdk.llm.shipper import Shipper

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    shipper = Shipper(url, "token", buffer_size=1, flush_interval=60.0)
    shipper.start()
    event = events.CostEvent(
        timestamp=datetime.now(UTC),
        provider="openai",
        model="gpt-4o",
        operation="chat",
        status="ok",
        input_tokens=1,
        output_tokens=1,
        cache_read_tokens=0,
        cache_write_tokens=0,
        reasoning_tokens=0,
        cost_usd=0.0,
        price_source="test",
        latency_seconds=0.1,
    )
    shipper(event)
    shipper(event)  # beyond the buffer: dropped and counted
    shipper.close(timeout=5)


def flush_spans(timeout: float = 10.0) -> None:
    """Export the finished spans now, to the closed port: each batch fails within its timeout.

    OpenTelemetry's `force_flush` ignores its timeout (it exports until the queue is
    empty), so it runs in a thread this process waits on for a bounded time.
    """
    from lightkeeper.sdk.tracing import force_flush

    flusher = threading.Thread(target=force_flush, daemon=True)
    flusher.start()
    flusher.join(timeout)
    if flusher.is_alive():
        raise SystemExit(f"span export still running after {timeout:g}s")


def samples() -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for metric in REGISTRY.collect() for s in metric.samples]


def main() -> None:
    drive_web()
    drive_logs()
    drive_database()
    drive_workflow()
    drive_redis()
    drive_llm()
    # Before the requests integration: its span wrapper ignores OpenTelemetry's
    # suppress-instrumentation flag, so the exporter's own POSTs would become spans to
    # export, and the flush would never end (reported to the SDK's owner).
    flush_spans()
    drive_http_clients()
    Path(os.environ["LK_CATALOGUE_OUT"]).write_text(json.dumps(samples()))


if __name__ == "__main__":
    main()
