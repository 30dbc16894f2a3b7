"""The SDK core against a real uvicorn: exact metrics, request ids, JSON logs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lightkeeper import catalogue
from lightkeeper.testing import parse_metrics, sample_value
from tests.support.services import uvicorn_process

APP = "tests.apps.core_app:app"
REQUESTS = catalogue.HTTP_REQUESTS.name
DURATION = catalogue.HTTP_REQUEST_DURATION.name


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Path]]:
    with uvicorn_process(APP) as (port, log):
        yield f"http://127.0.0.1:{port}", log


def log_lines(log: Path) -> list[dict]:
    lines = []
    for raw in log.read_text().splitlines():
        raw = raw.strip()
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


def wait_for_line(log: Path, predicate, timeout: float = 5.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [line for line in log_lines(log) if predicate(line)]
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("expected log line never appeared")


def metrics(base: str) -> dict:
    return parse_metrics(httpx.get(f"{base}/metrics").text)


def test_every_log_line_is_json(server: tuple[str, Path]) -> None:
    base, log = server
    httpx.get(f"{base}/items/1")
    wait_for_line(log, lambda line: line.get("path") == "/items/1")
    for raw in log.read_text().splitlines():
        if raw.strip():
            json.loads(raw)  # uvicorn's own startup lines included


def test_route_templates_status_codes_and_histograms_are_exact(server: tuple[str, Path]) -> None:
    base, _ = server
    before = metrics(base)
    with httpx.Client(base_url=base) as client:
        for item in (11, 12, 13):
            assert client.get(f"/items/{item}").status_code == 200
        assert client.post("/items", content=b"a" * 1500).json() == {"size": 1500}
        assert client.get("/v2/things/abc").status_code == 200
        assert client.get("/orgs/o-1/api/users/u-1").status_code == 200
        assert client.get("/orgs/o-2/api/users/u-2").status_code == 200
        assert client.get("/no/such/path").status_code == 404
        assert client.get("/items/not-an-int").status_code == 422
        assert client.delete("/items/1").status_code == 405
        client.get("/health")
        client.get("/health/live")
    after = metrics(base)

    def delta(name: str, **labels: str) -> float:
        return sample_value(after, name, **labels) - sample_value(before, name, **labels)

    assert delta(REQUESTS, method="GET", route="/items/{item_id}", status_code="200") == 3
    assert delta(REQUESTS, method="POST", route="/items", status_code="200") == 1
    assert delta(REQUESTS, method="GET", route="/v2/things/{thing_id}", status_code="200") == 1
    assert delta(REQUESTS, method="GET", route="/orgs/{org_id}/api/users/{user_id}", status_code="200") == 2
    assert delta(REQUESTS, method="GET", route=catalogue.UNMATCHED_ROUTE, status_code="404") == 1
    assert delta(REQUESTS, method="GET", route="/items/{item_id}", status_code="422") == 1
    assert delta(REQUESTS, method="DELETE", route="/items/{item_id}", status_code="405") == 1
    assert delta(REQUESTS) == 10, "health endpoints and /metrics must not be counted"
    assert delta(f"{DURATION}_count", method="GET", route="/items/{item_id}") == 4
    # 1500 bytes lands in the 10 kB bucket, not the 1 kB one.
    size = catalogue.HTTP_REQUEST_SIZE.name
    assert delta(f"{size}_bucket", route="/items", le="1000.0") == 0
    assert delta(f"{size}_bucket", route="/items", le="10000.0") == 1
    assert delta(f"{size}_sum", route="/items") == 1500
    # Raw ids never become label values.
    for (name, labels), _ in after.items():
        for value in dict(labels).values():
            assert "o-1" not in value and "u-2" not in value and "abc" not in value, (name, labels)


def test_unhandled_exception_is_a_500_with_request_id_counted_logged_once_and_reaches_uvicorn(
    server: tuple[str, Path],
) -> None:
    base, log = server
    before = metrics(base)
    response = httpx.get(f"{base}/fail", headers={"X-Request-ID": "fail-req-1"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "fail-req-1"
    assert response.headers["connection"] == "close"  # uvicorn closes it after the re-raise
    after = metrics(base)
    exc = catalogue.HTTP_EXCEPTIONS.name
    assert (
        sample_value(after, exc, route="/fail", exception_type="RuntimeError")
        - sample_value(before, exc, route="/fail", exception_type="RuntimeError")
        == 1
    )
    assert (
        sample_value(after, REQUESTS, route="/fail", status_code="500")
        - sample_value(before, REQUESTS, route="/fail", status_code="500")
        == 1
    )
    lines = wait_for_line(log, lambda line: line.get("request_id") == "fail-req-1")
    time.sleep(0.2)
    lines = [line for line in log_lines(log) if line.get("request_id") == "fail-req-1"]
    tracebacks = [line for line in lines if "Traceback" in str(line.get("exception", ""))]
    assert len(tracebacks) == 1, lines
    assert "database said no" in tracebacks[0]["exception"]
    access = [line for line in lines if line["event"] == "http_request"]
    assert len(access) == 1 and access[0]["status_code"] == 500 and access[0]["level"] == "error"
    # The exception went on to uvicorn, which logs it as it does without Lightkeeper,
    # but names it instead of repeating the traceback: one traceback per exception.
    everything = log_lines(log)
    server_lines = [line for line in everything if "Exception in ASGI application" in str(line.get("event"))]
    assert len(server_lines) == 1, server_lines
    assert server_lines[0]["logger"] == "uvicorn.error" and server_lines[0]["level"] == "error"
    assert server_lines[0]["exception"] == "RuntimeError (traceback in the unhandled_exception line)"
    assert len([line for line in everything if "database said no" in str(line.get("exception"))]) == 1


def test_streaming_is_timed_to_the_last_chunk_and_background_tasks_are_not(
    server: tuple[str, Path],
) -> None:
    base, log = server
    before = metrics(base)
    t0 = time.monotonic()
    assert len(httpx.get(f"{base}/stream").content) == 500
    assert httpx.get(f"{base}/background").json() == {"queued": "yes"}
    assert time.monotonic() - t0 < 1.5
    wait_for_line(log, lambda line: line.get("event") == "background_finished")
    after = metrics(base)

    def delta(name: str, **labels: str) -> float:
        return sample_value(after, name, **labels) - sample_value(before, name, **labels)

    stream_seconds = delta(f"{DURATION}_sum", route="/stream")
    assert 0.2 <= stream_seconds < 1.0, stream_seconds  # 5 chunks, 50 ms apart
    ttfb = catalogue.HTTP_TIME_TO_FIRST_BYTE.name
    assert delta(f"{ttfb}_count", route="/stream") == 1
    assert delta(f"{ttfb}_sum", route="/stream") < stream_seconds / 2
    assert delta(f"{ttfb}_count", route="/items/{item_id}") == 0  # only streaming responses
    background_seconds = delta(f"{DURATION}_sum", route="/background")
    assert background_seconds < 0.4, "the 0.5 s background task must not count as request time"
    assert delta(catalogue.HTTP_RESPONSE_SIZE.name + "_sum", route="/stream") == 500


def test_request_id_round_trips_and_reaches_every_line_of_the_request(server: tuple[str, Path]) -> None:
    base, log = server
    response = httpx.get(f"{base}/sync/7", headers={"X-Request-ID": "req-sync-7"})
    assert response.headers["x-request-id"] == "req-sync-7"
    lines = wait_for_line(
        log, lambda line: line.get("request_id") == "req-sync-7" and line["event"] == "http_request"
    )
    time.sleep(0.1)
    mine = {line["event"]: line for line in log_lines(log) if line.get("request_id") == "req-sync-7"}
    assert {"sync_work", "stdlib line from a thread", "http_request"} <= set(mine), mine
    access = lines[0]
    for key in (
        "timestamp",
        "level",
        "event",
        "service",
        "environment",
        "version",
        "request_id",
        "trace_id",
        "span_id",
        "method",
        "route",
        "path",
        "status_code",
        "duration_ms",
        "client_ip",
        "user_agent",
    ):
        assert key in access, key
    assert access["route"] == "/sync/{n}" and access["path"] == "/sync/7" and access["status_code"] == 200
    assert access["service"] == "core" and access["environment"] == "test" and access["version"] == "9.9.9"
    assert mine["stdlib line from a thread"]["logger"] == "app.sync"
    assert mine["stdlib line from a thread"]["level"] == "warning"


def test_bindings_reach_the_access_line_and_starlette_routes_get_their_template(
    server: tuple[str, Path],
) -> None:
    base, log = server
    before = metrics(base)
    httpx.get(f"{base}/sync/8", headers={"X-Request-ID": "req-bind-sync"})
    httpx.get(f"{base}/plain/3", headers={"X-Request-ID": "req-bind-plain"})
    assert httpx.get(f"{base}/openapi.json").status_code == 200
    after = metrics(base)

    def access_of(rid: str) -> dict:
        return wait_for_line(
            log, lambda line: line.get("request_id") == rid and line["event"] == "http_request"
        )[0]

    sync_line, plain_line = access_of("req-bind-sync"), access_of("req-bind-plain")
    assert sync_line["job"] == "sync-8"  # bound in the thread pool, written by the middleware
    assert plain_line["plain_n"] == "3" and plain_line["route"] == "/plain/{n}"
    for route in ("/plain/{n}", "/openapi.json"):
        assert (
            sample_value(after, REQUESTS, route=route, status_code="200")
            - sample_value(before, REQUESTS, route=route, status_code="200")
            == 1
        ), route
    # Idle now: every route requested keeps its in-progress sample, at 0.
    in_progress = catalogue.HTTP_REQUESTS_IN_PROGRESS.name
    for route in ("/plain/{n}", "/sync/{n}", "/openapi.json"):
        key = (in_progress, frozenset({"method": "GET", "route": route}.items()))
        assert after.get(key) == 0, (route, sorted(k for k in after if k[0] == in_progress))


def test_background_task_lines_keep_the_request_id(server: tuple[str, Path]) -> None:
    base, log = server
    httpx.get(f"{base}/background", headers={"X-Request-ID": "req-bg-1"})
    wait_for_line(
        log, lambda line: line.get("event") == "background_finished" and line.get("request_id") == "req-bg-1"
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"x" * 129,
        b"abc\x01def",
        b"caf\xc3\xa9",
        b"",
        b"has space",
        b"<script>",
        b"a\r\nSet-Cookie: x=1",
    ],
)
def test_malformed_request_ids_are_replaced_never_echoed(server: tuple[str, Path], raw: bytes) -> None:
    base, log = server
    try:
        response = httpx.get(f"{base}/items/5", headers=[(b"x-request-id", raw)])
    except httpx.LocalProtocolError:
        return  # httpx refuses to even send a header with CR/LF: nothing can be echoed
    echoed = [v for k, v in response.headers.raw if raw and raw in v]
    assert not echoed, "a malformed request id was echoed back"
    if response.status_code == 400 and "x-request-id" not in response.headers:
        return  # uvicorn's HTTP parser rejected the header before the app saw it
    returned = response.headers["x-request-id"]
    assert len(returned) == 32 and all(c in "0123456789abcdef" for c in returned)
    if raw:
        assert raw.decode("latin-1") not in log.read_text()


def test_sane_request_id_of_max_length_is_kept(server: tuple[str, Path]) -> None:
    base, _ = server
    rid = "a" * 128
    assert httpx.get(f"{base}/items/5", headers={"X-Request-ID": rid}).headers["x-request-id"] == rid


def test_metrics_token_protects_the_endpoint() -> None:
    with uvicorn_process(APP, env={"LIGHTKEEPER_METRICS_TOKEN": "s3cret-metrics-token"}) as (port, log):
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/metrics").status_code == 401
        assert httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer s3cret-metrics-token"})
        assert ok.status_code == 200 and REQUESTS in ok.text
        assert httpx.get(f"{base}/health/live").status_code == 200
        assert "s3cret-metrics-token" not in log.read_text()


def test_openmetrics_is_served_when_asked_for(server: tuple[str, Path]) -> None:
    base, _ = server
    response = httpx.get(f"{base}/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")
