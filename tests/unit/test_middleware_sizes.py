"""Request and response sizes on the fast path: zero, absent, malformed and negative
Content-Length values are recorded exactly as prometheus-client's own observe() would."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import Response

import lightkeeper
from lightkeeper import catalogue
from lightkeeper.testing import capture_logs, capture_metrics

SIZE = catalogue.HTTP_REQUEST_SIZE.name
SENT = catalogue.HTTP_RESPONSE_SIZE.name
FIRST_BUCKET = str(float(catalogue.HTTP_REQUEST_SIZE.buckets[0]))


def make_app() -> FastAPI:
    app = FastAPI()

    @app.post("/upload")
    async def upload() -> dict[str, bool]:
        return {"ok": True}

    @app.delete("/things/{thing_id}", status_code=204)
    async def remove(thing_id: int) -> Response:
        return Response(status_code=204)

    lightkeeper.instrument(app, service="sizes", environment="test", version="1")
    return app


def raw_call(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    """One request through the ASGI interface itself, so any header value can be sent."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
    }
    asyncio.run(app(scope, receive, send))
    return int(sent[0]["status"])


@pytest.mark.parametrize(
    ("content_length", "recorded"),
    [(None, 0), (b"0", 0), (b"12", 12), (b"abc", 0), (b"-5", 0), (b"", 0)],
)
def test_request_size_from_content_length(content_length: bytes | None, recorded: int) -> None:
    app = make_app()
    headers = [(b"host", b"t")]
    if content_length is not None:
        headers.append((b"content-length", content_length))
    with capture_logs(), capture_metrics() as delta:
        assert raw_call(app, "POST", "/upload", headers) == 200
    assert delta.value(f"{SIZE}_count", route="/upload") == 1
    assert delta.value(f"{SIZE}_sum", route="/upload") == recorded
    first = delta.value(f"{SIZE}_bucket", route="/upload", le=FIRST_BUCKET)
    assert first == (1 if recorded <= catalogue.HTTP_REQUEST_SIZE.buckets[0] else 0)


def test_an_empty_response_is_counted_in_the_first_bucket_with_nothing_added_to_the_sum() -> None:
    app = make_app()
    with capture_logs(), capture_metrics() as delta:
        assert raw_call(app, "DELETE", "/things/3", [(b"host", b"t")]) == 204
    assert delta.value(f"{SENT}_count", route="/things/{thing_id}") == 1
    assert delta.value(f"{SENT}_sum", route="/things/{thing_id}") == 0
    assert delta.value(f"{SENT}_bucket", route="/things/{thing_id}", le=FIRST_BUCKET) == 1


def test_a_repeated_request_id_header_keeps_the_last_value() -> None:
    app = make_app()
    with capture_logs() as logs:
        raw_call(app, "POST", "/upload", [(b"x-request-id", b"first-id"), (b"x-request-id", b"second-id")])
    (line,) = [x for x in logs if x["event"] == "http_request"]
    assert line["request_id"] == "second-id"


def test_requests_in_progress_stays_visible_as_zero_when_idle() -> None:
    """`sum(http_requests_in_progress)` must say 0 between requests, not "no data"."""
    import httpx

    from lightkeeper.testing import parse_metrics, sample_value

    app = FastAPI()
    release = asyncio.Event()
    entered = asyncio.Event()

    @app.get("/held/{n}")
    async def held(n: int) -> dict[str, int]:
        entered.set()
        await release.wait()
        return {"n": n}

    lightkeeper.instrument(app, service="inflight", environment="test", version="1")
    name = catalogue.HTTP_REQUESTS_IN_PROGRESS.name

    async def scenario() -> tuple[str, str, str]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            before = (await client.get("/metrics")).text
            pending = asyncio.create_task(client.get("/held/1"))
            await asyncio.wait_for(entered.wait(), 5)
            during = (await client.get("/metrics")).text
            release.set()
            assert (await asyncio.wait_for(pending, 5)).status_code == 200
            after = (await client.get("/metrics")).text
        return before, during, after

    with capture_logs():
        before, during, after = asyncio.run(scenario())
    labels = {"method": "GET", "route": "/held/{n}"}
    assert f"# TYPE {name} gauge" in before
    assert (name, frozenset(labels.items())) not in parse_metrics(before)  # never requested yet
    assert sample_value(parse_metrics(during), name, **labels) == 1
    idle = parse_metrics(after)
    assert (name, frozenset(labels.items())) in idle and sample_value(idle, name, **labels) == 0
    # the raw path never becomes a label
    assert not any(dict(key[1]).get("route", "").startswith("/held/1") for key in idle)
