"""An endpoint's exception is recorded, answered with a 500 carrying the request id,
and still reaches the server and the test client, as without Lightkeeper."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

import lightkeeper
from lightkeeper import catalogue
from lightkeeper.testing import capture_logs, capture_metrics

REQUESTS = catalogue.HTTP_REQUESTS.name
EXCEPTIONS = catalogue.HTTP_EXCEPTIONS.name


class PaymentDeclinedError(Exception):
    """A distinct type, so no other test's failures are counted with these."""


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.get("/pay/{order}")
    async def pay(order: str) -> None:
        raise PaymentDeclinedError(f"order {order} declined")

    @app.get("/ok")
    async def ok() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/deliberate")
    async def deliberate() -> PlainTextResponse:
        return PlainTextResponse("chose to fail", status_code=500)

    lightkeeper.instrument(app, service="exc", environment="test", version="1")
    return app


def test_testclient_sees_the_endpoints_exception_and_it_is_still_recorded() -> None:
    app = fastapi_app()
    with capture_logs() as logs, capture_metrics() as delta, TestClient(app) as client:
        with pytest.raises(PaymentDeclinedError, match="order o-1 declined"):
            client.get("/pay/o-1")
        assert client.get("/ok").status_code == 200  # the app keeps serving
    assert delta.value(EXCEPTIONS, route="/pay/{order}", exception_type="PaymentDeclinedError") == 1
    assert delta.value(REQUESTS, route="/pay/{order}", status_code="500") == 1
    errors = [line for line in logs if line["event"] == "unhandled_exception"]
    assert len(errors) == 1 and "order o-1 declined" in errors[0]["exception"]
    (access,) = [line for line in logs if line.get("path") == "/pay/o-1"]
    assert access["status_code"] == 500 and access["request_id"] == errors[0]["request_id"]


def test_testclient_without_raising_gets_the_500_with_the_request_id() -> None:
    app = fastapi_app()
    with capture_logs(), capture_metrics() as delta, TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/pay/o-2", headers={"X-Request-ID": "pay-req-2"})
    assert response.status_code == 500 and response.text == "Internal Server Error"  # Starlette's own
    assert response.headers["x-request-id"] == "pay-req-2"
    assert response.headers["connection"] == "close"  # the server drops it after the re-raise
    assert delta.value(REQUESTS, route="/pay/{order}", status_code="500") == 1


def test_a_500_the_app_returns_keeps_its_connection_and_raises_nothing() -> None:
    with capture_logs() as logs, TestClient(fastapi_app()) as client:
        response = client.get("/deliberate")
    assert response.status_code == 500 and response.text == "chose to fail"
    assert "connection" not in response.headers and "x-request-id" in response.headers
    assert not [line for line in logs if line["event"] == "unhandled_exception"]


def test_a_starlette_app_behaves_the_same() -> None:
    async def boom(request: Request) -> PlainTextResponse:
        raise PaymentDeclinedError("starlette declined")

    app = Starlette(routes=[Route("/boom", boom)])
    lightkeeper.instrument(app, service="exc-star")
    with capture_logs(), capture_metrics() as delta:
        with pytest.raises(PaymentDeclinedError):
            TestClient(app).get("/boom")
        response = TestClient(app, raise_server_exceptions=False).get("/boom")
    assert response.status_code == 500 and "x-request-id" in response.headers
    assert delta.value(REQUESTS, route="/boom", status_code="500") == 2
    assert delta.value(EXCEPTIONS, route="/boom", exception_type="PaymentDeclinedError") == 2


def test_a_plain_asgi_app_gets_a_500_from_lightkeeper_and_the_exception_goes_on() -> None:
    async def raw(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise PaymentDeclinedError("raw app declined")

    wrapped = lightkeeper.instrument(raw, service="exc-raw")

    async def call(raise_app_exceptions: bool) -> httpx.Response:
        transport = httpx.ASGITransport(app=wrapped, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/anything", headers={"X-Request-ID": "raw-req-1"})

    with capture_logs(), capture_metrics() as delta:
        with pytest.raises(PaymentDeclinedError):
            asyncio.run(call(True))
        response = asyncio.run(call(False))
    assert response.status_code == 500 and response.headers["x-request-id"] == "raw-req-1"
    assert response.json() == {"detail": "Internal Server Error"}
    # counted as the 500 it was, not as a client that went away (499)
    assert delta.value(REQUESTS, route=catalogue.UNMATCHED_ROUTE, status_code="500") == 2
    assert delta.value(REQUESTS, status_code="499") == 0


def test_an_exception_after_the_response_started_is_recorded_and_reraised() -> None:
    async def chunks() -> Any:
        yield b"partial"
        raise PaymentDeclinedError("stream broke")

    async def stream(request: Request) -> StreamingResponse:
        return StreamingResponse(chunks())

    app = Starlette(routes=[Route("/stream", stream)])
    lightkeeper.instrument(app, service="exc-stream")
    with capture_logs() as logs, capture_metrics() as delta, pytest.raises(PaymentDeclinedError):
        TestClient(app).get("/stream")
    assert delta.value(EXCEPTIONS, route="/stream", exception_type="PaymentDeclinedError") == 1
    # the status was already sent: the request counts under it, once
    assert delta.value(REQUESTS, route="/stream") == 1
    assert len([line for line in logs if line["event"] == "unhandled_exception"]) == 1


def test_an_instrumented_app_mounted_in_another_reports_the_exception_once() -> None:
    outer = FastAPI()
    outer.mount("/inner", fastapi_app())
    lightkeeper.instrument(outer, service="exc-outer")
    with capture_logs() as logs, capture_metrics() as delta, pytest.raises(PaymentDeclinedError):
        TestClient(outer).get("/inner/pay/o-3")
    assert delta.value(EXCEPTIONS, exception_type="PaymentDeclinedError") == 1
    assert len([line for line in logs if line["event"] == "unhandled_exception"]) == 1
