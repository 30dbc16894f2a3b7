"""One request, one trace: HTTP -> SQL -> Celery publish -> a real prefork worker -> SQL.

The API (tests.apps.traced_app under uvicorn) and the worker (tests.integration.celery_app
under `celery worker --pool prefork`) both export to one local OTLP receiver. Broker:
Redis db 9, results: db 10, a queue unique to the run; real PostgreSQL on both sides.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.support import services
from tests.support.receivers import OTLPReceiver, SentryReceiver

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BROKER = f"redis://{services.REDIS_HOST}:{services.REDIS_PORT}/9"
BACKEND = f"redis://{services.REDIS_HOST}:{services.REDIS_PORT}/10"
SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5  # OTLP SpanKind values


@dataclass
class Stack:
    api_port: int
    api_log: Path
    worker_log: Path
    otlp: OTLPReceiver
    sentry: SentryReceiver
    queue: str


def json_lines(path: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in path.read_text(errors="replace").splitlines() if line.startswith("{")
    ]


def base_env(otlp: OTLPReceiver, sentry: SentryReceiver, queue: str, pg_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LIGHTKEEPER_", "SENTRY_"))}
    env.update(
        {
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "LIGHTKEEPER_OTLP_ENDPOINT": otlp.endpoint,
            "LIGHTKEEPER_TRACE_SAMPLE_RATE": "1.0",
            "SENTRY_DSN": sentry.dsn,
            "LK_CELERY_BROKER": BROKER,
            "LK_CELERY_BACKEND": BACKEND,
            "LK_CELERY_QUEUE": queue,
            "LK_CELERY_DATABASE_URL": pg_url,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(services.ROOT), os.environ.get("PYTHONPATH", "")])
            ),
        }
    )
    return env


def start_worker(env: dict[str, str], queue: str, log: Path) -> subprocess.Popen[bytes]:
    command = services.celery_worker_command(queue)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(services.ROOT)
        )
    deadline = time.monotonic() + 60
    while "ready." not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the Celery worker did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def purge(queue: str) -> None:
    conn = redis.Redis(host=services.REDIS_HOST, port=services.REDIS_PORT, db=9)
    try:
        conn.delete(queue, f"_kombu.binding.{queue}", *(f"{queue}\x06\x16{p}" for p in range(1, 10)))
    finally:
        conn.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    queue = f"lk-trace-{uuid.uuid4().hex[:10]}"
    workdir = tmp_path_factory.mktemp("continuity")
    with services.temporary_database() as pg_url, OTLPReceiver() as otlp, SentryReceiver() as sentry:
        env = base_env(otlp, sentry, queue, pg_url)
        worker = start_worker(env, queue, workdir / "worker.log")
        try:
            api_env = {
                **env,
                "TRACED_PG_URL": pg_url,
                "TRACED_CELERY": "1",
                "TRACED_DEAD_BROKER": f"redis://127.0.0.1:{services.closed_port()}/9",
            }
            with services.uvicorn_process("tests.apps.traced_app:app", env=api_env) as (port, api_log):
                yield Stack(port, api_log, workdir / "worker.log", otlp, sentry, queue)
        finally:
            stop(worker)
            purge(queue)


def test_http_sql_and_celery_spans_share_one_trace(stack: Stack) -> None:
    response = httpx.get(f"http://127.0.0.1:{stack.api_port}/chain/7", timeout=10)
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    otlp = stack.otlp
    (server,) = otlp.wait_for_spans(lambda s: s["attributes"].get("lightkeeper.request_id") == request_id)
    trace_id = server["trace_id"]
    in_trace = lambda s: s["trace_id"] == trace_id  # noqa: E731
    # API side: the request's SQL and the publish are children of the server span.
    otlp.wait_for_spans(lambda s: in_trace(s) and s["kind"] == CONSUMER, timeout=30)
    otlp.wait_for_spans(lambda s: in_trace(s) and s["kind"] == CLIENT, count=2, timeout=30)
    spans = {(s["kind"], s["resource"]["service.name"]): s for s in otlp.spans if in_trace(s)}
    api_sql = spans[(CLIENT, "traced")]
    publish = spans[(PRODUCER, "traced")]
    execute = spans[(CONSUMER, "celery-test-worker")]
    worker_sql = spans[(CLIENT, "celery-test-worker")]
    assert api_sql["parent_span_id"] == server["span_id"] and api_sql["name"] == "SELECT"
    assert publish["parent_span_id"] == server["span_id"] and publish["name"] == "apply_async/lk.query"
    assert execute["parent_span_id"] == publish["span_id"] and execute["name"] == "run/lk.query"
    assert worker_sql["parent_span_id"] == execute["span_id"] and worker_sql["name"] == "SELECT"
    # The worker's log line for the task carries the same trace and the request id.
    deadline = time.monotonic() + 10
    line = None
    while line is None and time.monotonic() < deadline:
        line = next((x for x in json_lines(stack.worker_log) if x.get("event") == "task query done 7"), None)
        time.sleep(0.1)
    assert line is not None, stack.worker_log.read_text()[-2000:]
    assert line["trace_id"] == trace_id and line["request_id"] == request_id
    assert line["span_id"] == execute["span_id"]


def test_a_task_failure_reaches_sentry_from_the_worker_with_the_request_id(stack: Stack) -> None:
    from celery import Celery

    client = Celery("lk-continuity-client", broker=BROKER, backend=BACKEND)
    client.conf.update(task_default_queue=stack.queue)
    result = client.send_task(
        "lk.store_secret",
        args=["fail", "not-a-key", "not-a-password"],
        headers={"lightkeeper_request_id": "req-task-fail"},
    )
    with pytest.raises(PermissionError):
        result.get(timeout=30)
    stack.sentry.wait(
        lambda: any(e.get("tags", {}).get("request_id") == "req-task-fail" for e in stack.sentry.events), 20
    )
    (event,) = [e for e in stack.sentry.events if e.get("tags", {}).get("request_id") == "req-task-fail"]
    assert event["exception"]["values"][-1]["type"] == "PermissionError"
    assert event["tags"].get("celery_task_id") == result.id
    assert event["contexts"]["lightkeeper_request"]["task"] == "lk.store_secret"


def test_broker_down_fails_fast_and_the_app_keeps_serving(stack: Stack) -> None:
    started = time.monotonic()
    response = httpx.get(f"http://127.0.0.1:{stack.api_port}/publish-dead", timeout=30)
    assert response.status_code == 503
    assert time.monotonic() - started < 10
    assert httpx.get(f"http://127.0.0.1:{stack.api_port}/items/1", timeout=10).status_code == 200
    lines = [x for x in json_lines(stack.api_log) if x.get("request_id") == response.headers["x-request-id"]]
    handled = [x for x in lines if x["event"] == "handled_exception"]
    assert handled and handled[0]["operation"] == "publish"
