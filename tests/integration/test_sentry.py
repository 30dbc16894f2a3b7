"""Errors end to end: a real uvicorn process with a real sentry-sdk whose DSN points at a
local receiver (tests.support.receivers.SentryReceiver), plus the OTLP receiver to check
the trace-id tag; and Sentry's endpoint refusing, failing and hanging.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lightkeeper.sdk import redact
from lightkeeper.testing import sample_value
from tests.support import services
from tests.support.receivers import OTLPReceiver, SentryReceiver

pytestmark = [pytest.mark.integration]

BEARER = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyXzQyIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


def app_env(dsn: str | None, otlp: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LIGHTKEEPER_", "SENTRY_"))}
    env.update({"OTEL_BSP_SCHEDULE_DELAY": "100", **extra})
    if dsn is not None:
        env["SENTRY_DSN"] = dsn
    if otlp is not None:
        env["LIGHTKEEPER_OTLP_ENDPOINT"] = otlp
    return env


def get(port: int, path: str, **headers: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=10)


def metrics(port: int) -> str:
    return get(port, "/metrics").text


def json_lines(path: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in path.read_text(errors="replace").splitlines() if line.startswith("{")
    ]


def events_for(sentry: SentryReceiver, request_id: str, settle: float = 1.0) -> list[dict[str, Any]]:
    """Events tagged with `request_id`, once one arrived and a moment passed for a duplicate."""
    sentry.wait(lambda: any(e.get("tags", {}).get("request_id") == request_id for e in sentry.events), 15)
    time.sleep(settle)
    return [e for e in sentry.events if e.get("tags", {}).get("request_id") == request_id]


@pytest.fixture(scope="module")
def receivers() -> Iterator[tuple[SentryReceiver, OTLPReceiver]]:
    with SentryReceiver() as sentry, OTLPReceiver() as otlp:
        yield sentry, otlp


@pytest.fixture(scope="module")
def service(receivers: tuple[SentryReceiver, OTLPReceiver]) -> Iterator[tuple[int, Path]]:
    sentry, otlp = receivers
    with services.uvicorn_process(
        "tests.apps.traced_app:app", env=app_env(sentry.dsn, otlp.endpoint)
    ) as proc:
        yield proc


def test_an_unhandled_exception_reaches_sentry_exactly_once_with_its_request(
    service: tuple[int, Path], receivers: tuple[SentryReceiver, OTLPReceiver]
) -> None:
    port, log = service
    sentry, otlp = receivers
    response = get(
        port,
        "/fail?token=abc123def456&page=2",
        authorization=BEARER,
        cookie="session=s3ss10n",
        **{"x-request-id": "req-sentry-once"},
    )
    assert response.status_code == 500
    (event,) = events_for(sentry, "req-sentry-once")
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "RuntimeError"
    assert exception["mechanism"] == {"type": "lightkeeper", "handled": False}
    assert event["transaction"] == "GET /fail"
    assert event["environment"] == "test" and event["release"] == "1.2.3"
    request = event["request"]
    assert request["method"] == "GET"
    assert request["headers"]["authorization"] == redact.MASK
    assert request["headers"]["cookie"] == redact.MASK
    assert request["query_string"] == f"token={redact.MASK}&page=2"
    assert "data" not in request
    # The trace id tag points at the request's trace (Sentry -> Tempo).
    (span,) = otlp.wait_for_spans(
        lambda s: s["attributes"].get("lightkeeper.request_id") == "req-sentry-once"
    )
    assert event["tags"]["trace_id"] == span["trace_id"]
    everything = json.dumps(event)
    for secret in ("eyJhbGciOiJIUzI1NiJ9", "s3ss10n", "abc123def456"):
        assert secret not in everything
    # Lightkeeper's own middleware frame is not the application's code.
    frames = exception["stacktrace"]["frames"]
    assert not [f for f in frames if f.get("in_app") and "lightkeeper" in (f.get("module") or "")]
    # Still logged once as JSON with the stack trace.
    lines = [x for x in json_lines(log) if x.get("request_id") == "req-sentry-once"]
    assert [x["event"] for x in lines].count("unhandled_exception") == 1
    assert "Traceback" in next(x for x in lines if x["event"] == "unhandled_exception")["exception"]


def test_a_handled_error_is_reported_with_its_context_and_logged(
    service: tuple[int, Path], receivers: tuple[SentryReceiver, OTLPReceiver]
) -> None:
    port, log = service
    sentry, _ = receivers
    assert get(port, "/handled", **{"x-request-id": "req-handled"}).json() == {"handled": True}
    (event,) = events_for(sentry, "req-handled")
    assert event["exception"]["values"][0]["mechanism"]["handled"] is True
    assert event["exception"]["values"][0]["type"] == "ConnectionError"
    assert event["contexts"]["lightkeeper"] == {"report_id": 17}
    (line,) = [
        x
        for x in json_lines(log)
        if x.get("request_id") == "req-handled" and x["event"] == "handled_exception"
    ]
    assert line["report_id"] == 17 and "Traceback" in line["exception"]


def test_repeated_errors_are_rate_limited_per_fingerprint_and_still_counted() -> None:
    with SentryReceiver() as sentry:
        env = app_env(sentry.dsn, LIGHTKEEPER_SENTRY_EVENTS_PER_FINGERPRINT_PER_MINUTE="3")
        with services.uvicorn_process("tests.apps.traced_app:app", env=env) as (port, log):
            for _ in range(12):
                assert get(port, "/fail/a").status_code == 500
            for _ in range(2):
                assert get(port, "/fail/b").status_code == 500
            sentry.wait(lambda: len(sentry.events) >= 5, 15)
            time.sleep(1.0)
            text = metrics(port)
        by_type: dict[str, int] = {}
        for event in sentry.events:
            kind = event["exception"]["values"][-1]["type"]
            by_type[kind] = by_type.get(kind, 0) + 1
        assert by_type == {"ValueError": 3, "KeyError": 2}
        assert (
            sample_value(text, "lightkeeper_error_events_suppressed_total", exception_type="ValueError") == 9
        )
        assert sample_value(text, "http_exceptions_total", route="/fail/{kind}") == 14
        # Every occurrence is still logged.
        assert [x["event"] for x in json_lines(log)].count("unhandled_exception") == 14


def test_without_a_dsn_errors_are_counted_and_logged_once_with_the_stack_trace() -> None:
    with SentryReceiver() as sentry:  # listening, but nobody is told about it
        with services.uvicorn_process("tests.apps.traced_app:app", env=app_env(None)) as (port, log):
            response = get(port, "/fail", **{"x-request-id": "req-no-dsn"})
            assert response.status_code == 500
            text = metrics(port)
            time.sleep(0.5)
        lines = [x for x in json_lines(log) if x.get("request_id") == "req-no-dsn"]
        assert sorted(x["event"] for x in lines) == ["http_request", "unhandled_exception"]
        error = next(x for x in lines if x["event"] == "unhandled_exception")
        assert error["level"] == "error" and error["exception_type"] == "RuntimeError"
        assert "payment provider refused the charge" in error["exception"]
        assert sample_value(text, "http_exceptions_total", route="/fail", exception_type="RuntimeError") == 1
        assert sentry.requests == 0


@pytest.mark.parametrize("endpoint_kind", ["refused", "hung", "error"])
def test_a_broken_sentry_endpoint_never_reaches_the_app(endpoint_kind: str) -> None:
    with contextlib.ExitStack() as stack:
        if endpoint_kind == "refused":
            dsn = f"http://key@127.0.0.1:{services.closed_port()}/1"
        elif endpoint_kind == "hung":
            dsn = f"http://key@127.0.0.1:{stack.enter_context(services.silent_listener())}/1"
        else:
            failing = stack.enter_context(SentryReceiver())
            failing.mode = "error"
            dsn = failing.dsn
        env = app_env(dsn, LIGHTKEEPER_SENTRY_TIMEOUT_SECONDS="1")
        started = time.monotonic()
        with services.uvicorn_process("tests.apps.traced_app:app", env=env) as (port, _):
            for kind in ("a", "b", "c", "d"):
                before = time.monotonic()
                assert get(port, f"/fail/{kind}").status_code == 500
                assert time.monotonic() - before < 1.0  # the transport's thread waits, not the request
            assert get(port, "/items/1").status_code == 200
            deadline = time.monotonic() + 20
            failures = 0.0
            while time.monotonic() < deadline:
                failures = sample_value(
                    metrics(port), "lightkeeper_telemetry_export_failures_total", exporter="sentry"
                )
                if failures >= 4:
                    break
                time.sleep(0.2)
            assert failures >= 4
        assert time.monotonic() - started < 40  # and exit does not wait on the dead endpoint


def test_with_sentry_performance_on_errors_are_still_reported_once() -> None:
    # traces_sample_rate > 0 turns sentry-sdk's Starlette/FastAPI integrations on: they
    # wrap the app outside Lightkeeper's middleware, which must not make two events.
    with SentryReceiver() as sentry:
        env = app_env(sentry.dsn, LIGHTKEEPER_SENTRY_TRACES_SAMPLE_RATE="1.0")
        with services.uvicorn_process("tests.apps.traced_app:app", env=env) as (port, _):
            response = get(
                port, "/fail?token=abc123def456", authorization=BEARER, **{"x-request-id": "req-perf-once"}
            )
            assert response.status_code == 500
            (event,) = events_for(sentry, "req-perf-once", settle=2.0)
            assert event["exception"]["values"][-1]["type"] == "RuntimeError"
            sentry.wait(lambda: len(sentry.transactions) >= 1, 15)
        transaction = sentry.transactions[0]
        assert transaction["transaction"] == "/fail"
        everything = json.dumps([sentry.events, sentry.transactions])
        assert "abc123def456" not in everything and "eyJhbGciOiJIUzI1NiJ9" not in everything


def test_a_browser_error_reaches_sentry_redacted_with_its_page(
    receivers: tuple[SentryReceiver, OTLPReceiver],
) -> None:
    """RUM error beacons go to Sentry through the same before_send redaction as server errors."""
    sentry, _ = receivers
    chrome = (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
    )
    beacon = {
        "page": "/items/{item_id}",
        "device": "desktop",
        "errors": [
            {
                "kind": "error",
                "name": "TypeError",
                "message": f"cannot read token of undefined {BEARER}",
                "stack": "at load (https://app.example.com/app.js?api_key=sk-live-0123456789abcdef:1:9)",
            }
        ],
    }
    env = app_env(sentry.dsn, LIGHTKEEPER_RUM_ENABLED="true")
    with services.uvicorn_process("tests.apps.traced_app:app", env=env) as (port, _):
        response = httpx.post(
            f"http://127.0.0.1:{port}/lightkeeper/rum",
            content=json.dumps(beacon).encode(),
            headers={"user-agent": chrome, "content-type": "text/plain;charset=UTF-8"},
            timeout=10,
        )
        assert response.status_code == 204
        sentry.wait(lambda: any(e.get("logger") == "lightkeeper.rum" for e in sentry.events), 15)
    (event,) = [e for e in sentry.events if e.get("logger") == "lightkeeper.rum"]
    assert event["tags"]["page"] == "/items/{item_id}" and event["tags"]["error_type"] == "TypeError"
    assert event["message"].startswith("TypeError: cannot read token of undefined")
    everything = json.dumps(event)
    for secret in ("eyJhbGciOiJIUzI1NiJ9", "sk-live-0123456789abcdef"):
        assert secret not in everything
