"""Traces end to end: a real uvicorn (or gunicorn) process exporting over OTLP/HTTP to a
local receiver, real PostgreSQL (sync and async engines), real Redis (db 8), a second
service for outbound calls; and the failure paths of the OTLP endpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lightkeeper.testing import sample_value
from tests.support import services
from tests.support.receivers import OTLPReceiver

pytestmark = [pytest.mark.integration]

REDIS_URL = f"redis://{services.REDIS_HOST}:{services.REDIS_PORT}/8"
INBOUND_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
INBOUND_SPAN = "00f067aa0ba902b7"
SERVER, CLIENT = 2, 3  # OTLP SpanKind values


def app_env(otlp: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LIGHTKEEPER_", "SENTRY_"))}
    env.update({"OTEL_BSP_SCHEDULE_DELAY": "100", "LIGHTKEEPER_TRACE_SAMPLE_RATE": "1.0", **extra})
    if otlp is not None:
        env["LIGHTKEEPER_OTLP_ENDPOINT"] = otlp
    return env


def json_lines(path: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in path.read_text(errors="replace").splitlines() if line.startswith("{")
    ]


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with services.temporary_database() as url:
        yield url


@pytest.fixture(scope="module")
def otlp() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def downstream(otlp: OTLPReceiver) -> Iterator[int]:
    env = app_env(otlp.endpoint, TRACED_SERVICE="downstream")
    with services.uvicorn_process("tests.apps.traced_app:app", env=env) as (port, _):
        yield port


@pytest.fixture(scope="module")
def service(otlp: OTLPReceiver, pg_url: str, downstream: int) -> Iterator[tuple[int, Path]]:
    env = app_env(
        otlp.endpoint,
        TRACED_PG_URL=pg_url,
        TRACED_REDIS_URL=REDIS_URL,
        TRACED_DOWNSTREAM=f"http://127.0.0.1:{downstream}",
    )
    with services.uvicorn_process("tests.apps.traced_app:app", env=env) as (port, log):
        yield port, log


def get(port: int, path: str, **headers: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=10)


def server_span(otlp: OTLPReceiver, request_id: str, service: str | None = None) -> dict[str, Any]:
    """The server span of `request_id` in `service` (a downstream call shares the request id)."""
    (span,) = otlp.wait_for_spans(
        lambda s: (
            s["attributes"].get("lightkeeper.request_id") == request_id
            and s["kind"] == SERVER
            and (service is None or s["resource"]["service.name"] == service)
        )
    )
    return span


def children(
    otlp: OTLPReceiver, parent: dict[str, Any], count: int = 1, query: str = ""
) -> list[dict[str, Any]]:
    """Child spans of `parent`; with `query`, only SQL spans whose text starts with it."""
    return otlp.wait_for_spans(
        lambda s: (
            s["parent_span_id"] == parent["span_id"]
            and str(s["attributes"].get("db.query.text", "")).startswith(query)
        ),
        count=count,
    )


def test_server_span_continues_the_inbound_trace_and_owns_the_sql_span(
    service: tuple[int, Path], otlp: OTLPReceiver
) -> None:
    port, log = service
    response = get(port, "/db/5", traceparent=f"00-{INBOUND_TRACE}-{INBOUND_SPAN}-01")
    assert response.status_code == 200
    span = server_span(otlp, response.headers["x-request-id"])
    assert span["name"] == "GET /db/{item_id}"
    assert span["kind"] == SERVER
    assert span["trace_id"] == INBOUND_TRACE and span["parent_span_id"] == INBOUND_SPAN
    assert span["resource"]["service.name"] == "traced"
    assert span["resource"]["deployment.environment"] == "test"
    assert span["resource"]["service.version"] == "1.2.3"
    (sql,) = children(otlp, span, query="SELECT CAST(%(id)s")
    assert sql["kind"] == CLIENT and sql["name"] == "SELECT"
    assert sql["trace_id"] == INBOUND_TRACE
    assert sql["attributes"]["db.system.name"] == "postgresql"
    assert sql["attributes"]["db.query.text"].startswith("SELECT CAST(%(id)s")
    # The log lines of the request carry the server span's ids (Loki -> Tempo).
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        mine = [x for x in json_lines(log) if x.get("request_id") == response.headers["x-request-id"]]
        if len(mine) >= 2:
            break
        time.sleep(0.1)
    assert {x["event"] for x in mine} >= {"db_read", "http_request"}
    assert {(x["trace_id"], x["span_id"]) for x in mine} == {(span["trace_id"], span["span_id"])}


def test_async_engine_queries_join_the_request_trace(service: tuple[int, Path], otlp: OTLPReceiver) -> None:
    port, _ = service
    response = get(port, "/db-async/6")
    assert response.status_code == 200
    span = server_span(otlp, response.headers["x-request-id"])
    (sql,) = children(otlp, span, query="SELECT CAST($1")
    assert sql["name"] == "SELECT" and sql["trace_id"] == span["trace_id"]


def test_redis_commands_are_child_spans_without_their_values(
    service: tuple[int, Path], otlp: OTLPReceiver
) -> None:
    port, _ = service
    response = get(port, "/redis/k1")
    assert response.json() == {"value": "value"}
    span = server_span(otlp, response.headers["x-request-id"])
    commands = children(otlp, span, count=2)
    assert sorted(c["name"] for c in commands) == ["GET", "SET"]
    statements = [c["attributes"].get("db.statement", "") for c in commands]
    assert all("value" not in s and "traced:k1" not in s for s in statements), statements


def test_outbound_calls_carry_traceparent_to_the_next_service(
    service: tuple[int, Path], otlp: OTLPReceiver
) -> None:
    port, _ = service
    response = get(port, "/outbound")
    assert response.json()["status"] == 200
    upstream = server_span(otlp, response.headers["x-request-id"], service="traced")
    (client,) = children(otlp, upstream)
    assert client["kind"] == CLIENT and client["name"] == "GET"
    (remote,) = children(otlp, client)  # the downstream service's server span
    assert remote["name"] == "GET /items/{item_id}"
    assert remote["resource"]["service.name"] == "downstream"
    assert remote["trace_id"] == upstream["trace_id"]
    assert remote["attributes"]["lightkeeper.request_id"] == response.json()["downstream_request_id"]


def test_duration_histogram_exemplars_link_to_the_trace(
    service: tuple[int, Path], otlp: OTLPReceiver
) -> None:
    port, _ = service
    response = get(port, "/items/77")
    span = server_span(otlp, response.headers["x-request-id"])
    text = get(port, "/metrics", accept="application/openmetrics-text; version=1.0.0").text
    exemplars = [
        line
        for line in text.splitlines()
        if line.startswith("http_request_duration_seconds_bucket")
        and 'route="/items/{item_id}"' in line
        and "# {" in line
    ]
    assert any(f'trace_id="{span["trace_id"]}"' in line for line in exemplars), exemplars


def test_application_attributes_reach_the_span(service: tuple[int, Path], otlp: OTLPReceiver) -> None:
    port, _ = service
    response = get(port, "/annotate")
    assert server_span(otlp, response.headers["x-request-id"])["attributes"]["app.tenant"] == "acme"


def test_a_failed_request_span_has_the_error_and_the_exception_event(
    service: tuple[int, Path], otlp: OTLPReceiver
) -> None:
    port, _ = service
    response = get(port, "/fail")
    assert response.status_code == 500
    span = server_span(otlp, response.headers["x-request-id"])
    assert span["status"]["code"] == 2  # ERROR
    assert span["attributes"]["http.response.status_code"] == 500
    assert span["attributes"]["error.type"] == "RuntimeError"
    (event,) = [e for e in span["events"] if e["name"] == "exception"]
    assert "payment provider refused" in event["attributes"]["exception.message"]


def test_database_dying_mid_request_is_an_error_span_and_the_app_keeps_serving(
    service: tuple[int, Path], otlp: OTLPReceiver
) -> None:
    port, _ = service
    response = get(port, "/db-dies")
    assert response.status_code == 500
    span = server_span(otlp, response.headers["x-request-id"])
    failed = otlp.wait_for_spans(
        lambda s: s["parent_span_id"] == span["span_id"] and s["status"]["code"] == 2
    )
    # psycopg names the cause: the server terminated the connection.
    assert failed and failed[0]["attributes"]["error.type"] == "AdminShutdown"
    assert get(port, "/db/3").status_code == 200  # the pool recovers


def test_ten_percent_sampling_keeps_about_a_tenth_and_honours_sampled_parents(
    otlp: OTLPReceiver,
) -> None:
    env = app_env(otlp.endpoint, LIGHTKEEPER_TRACE_SAMPLE_RATE="0.1", TRACED_SERVICE="sampled")
    with services.uvicorn_process("tests.apps.traced_app:app", env=env) as (port, log):
        ids = [get(port, "/items/1").headers["x-request-id"] for _ in range(300)]
        forced = get(port, "/items/2", traceparent=f"00-{INBOUND_TRACE[:-4]}beef-{INBOUND_SPAN}-01")
        server_span(otlp, forced.headers["x-request-id"])  # a sampled parent is always followed
        time.sleep(1.0)
    kept = [
        s
        for s in otlp.spans
        if s["resource"]["service.name"] == "sampled"
        and s["attributes"].get("lightkeeper.request_id") in set(ids)
    ]
    # Binomial(300, 0.1): mean 30, below 10 or above 60 happens with p < 1e-6.
    assert 10 <= len(kept) <= 60, len(kept)
    # Unsampled requests still log a trace id (it travels downstream in traceparent).
    access = [x for x in json_lines(log) if x.get("event") == "http_request"]
    assert all(x["trace_id"] for x in access)


def export_failures(port: int) -> float:
    return sample_value(
        get(port, "/metrics").text, "lightkeeper_telemetry_export_failures_total", exporter="otlp"
    )


@pytest.mark.parametrize("endpoint_kind", ["refused", "hung", "error"])
def test_a_broken_otlp_endpoint_never_reaches_the_app(endpoint_kind: str, otlp: OTLPReceiver) -> None:
    with contextlib.ExitStack() as stack:
        if endpoint_kind == "refused":
            endpoint = f"http://127.0.0.1:{services.closed_port()}"
        elif endpoint_kind == "hung":
            endpoint = f"http://127.0.0.1:{stack.enter_context(services.silent_listener())}"
        else:
            failing = stack.enter_context(OTLPReceiver())
            failing.mode = "error"
            endpoint = failing.endpoint
        env = app_env(
            endpoint, LIGHTKEEPER_OTLP_TIMEOUT_SECONDS="1", TRACED_SERVICE=f"broken-{endpoint_kind}"
        )
        started = time.monotonic()
        with services.uvicorn_process("tests.apps.traced_app:app", env=env) as (port, _):
            for _ in range(20):
                before = time.monotonic()
                assert get(port, "/items/3").status_code == 200
                assert time.monotonic() - before < 1.0  # never waits for the exporter
            deadline = time.monotonic() + 15
            while export_failures(port) < 20 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert export_failures(port) >= 20
        # Shutdown is bounded too: one export timeout for the last batch, not 30 s.
        assert time.monotonic() - started < 30


def test_gunicorn_preload_workers_export_after_fork(otlp: OTLPReceiver) -> None:
    env = app_env(otlp.endpoint, TRACED_SERVICE="forked")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(services.ROOT), env.get("PYTHONPATH", "")]))
    port = services.free_port()
    log = Path(tempfile.mkstemp(prefix="lk-gunicorn-", suffix=".log")[1])
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--preload",
                "-w",
                "2",
                "-k",
                "uvicorn_worker.UvicornWorker",
                "-b",
                f"127.0.0.1:{port}",
                "tests.apps.traced_app:app",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(services.ROOT),
        )
        try:
            services.wait_for_port(port)
            pids: dict[int, list[str]] = {}
            deadline = time.monotonic() + 30
            while len(pids) < 2 and time.monotonic() < deadline:
                # New connections each time, so both workers get requests.
                response = get(port, "/items/9")
                pids.setdefault(response.json()["pid"], []).append(response.headers["x-request-id"])
            assert len(pids) == 2, log.read_text()[-2000:]
            for pid, request_ids in pids.items():
                for request_id in request_ids[:3]:
                    span = server_span(otlp, request_id)  # exported by the forked worker itself
                    assert span["resource"]["service.name"] == "forked", pid
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


ORDER_SCRIPT = """
import os, sys
import httpx, redis
from fastapi import FastAPI
from sqlalchemy import create_engine, text
import lightkeeper
from lightkeeper.sdk import tracing

app = FastAPI()
engine = create_engine("sqlite://")
client = redis.Redis.from_url(os.environ["ORDER_REDIS_URL"])

@app.get("/work")
def work():
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    client.get("lk-order")
    return {}

def integrations():
    lightkeeper.instrument_sqlalchemy(engine)
    lightkeeper.instrument_redis(client)

if sys.argv[1] == "integrations-first":
    integrations()
lightkeeper.instrument(app, service=sys.argv[1], environment="test")
if sys.argv[1] == "instrument-first":
    integrations()

import asyncio
async def go():
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/work")).status_code == 200
asyncio.run(go())
assert tracing.force_flush(10)
"""


@pytest.mark.parametrize("order", ["integrations-first", "instrument-first"])
def test_any_order_of_instrument_calls_gives_the_same_spans(order: str, otlp: OTLPReceiver) -> None:
    env = app_env(otlp.endpoint, ORDER_REDIS_URL=REDIS_URL)
    subprocess.run(
        [sys.executable, "-c", ORDER_SCRIPT, order],
        env=env,
        cwd=str(services.ROOT),
        check=True,
        capture_output=True,
        timeout=60,
    )
    mine = lambda s: s["resource"]["service.name"] == order  # noqa: E731
    (server,) = otlp.wait_for_spans(lambda s: mine(s) and s["kind"] == SERVER)
    children = otlp.wait_for_spans(lambda s: mine(s) and s["parent_span_id"] == server["span_id"], count=2)
    assert sorted(c["name"] for c in children) == ["GET", "SELECT"]
