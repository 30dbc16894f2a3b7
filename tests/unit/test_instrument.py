from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import lightkeeper
from lightkeeper import catalogue
from lightkeeper.sdk.instrument import AlreadyStartedError
from lightkeeper.testing import capture_logs, capture_metrics

REQUESTS = catalogue.HTTP_REQUESTS.name


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/ping/{n}")
    async def ping(n: int) -> dict[str, int]:
        return {"n": n}

    return app


def call(app: Any, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get(path, headers=headers)

    return asyncio.run(go())


def test_instrumenting_twice_and_two_apps_never_duplicate_timeseries() -> None:
    first, second = make_app(), make_app()
    lightkeeper.instrument(first, service="one", environment="test", version="1")
    lightkeeper.instrument(first, service="one", environment="test", version="2")  # last call wins
    lightkeeper.instrument(second, service="two", environment="test", version="1")
    with capture_logs() as logs, capture_metrics() as delta:
        assert call(first, "/ping/1").status_code == 200
        assert call(second, "/ping/2").status_code == 200
    assert delta.value(REQUESTS, route="/ping/{n}", status_code="200") == 2
    # Logging is process-wide: both apps' lines go through the newest configuration.
    assert [line["path"] for line in logs if line["event"] == "http_request"] == ["/ping/1", "/ping/2"]
    # the first app's middleware was built once, with the newest configuration
    assert first.middleware_stack is not None


def test_instrumenting_after_start_says_where_to_call_it() -> None:
    app = make_app()
    with capture_logs():
        call(app, "/ping/1")  # builds the middleware stack
    with pytest.raises(AlreadyStartedError, match="right after creating the app"):
        lightkeeper.instrument(app, service="late")


def test_plain_asgi_callables_are_wrapped() -> None:
    async def raw_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    wrapped = lightkeeper.instrument(raw_app, service="raw")
    with capture_logs(), capture_metrics() as delta:
        response = call(wrapped, "/anything")
    assert response.status_code == 204 and "x-request-id" in response.headers
    assert delta.value(REQUESTS, route=catalogue.UNMATCHED_ROUTE, status_code="204") == 1


def test_starlette_apps_work_too() -> None:
    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse("hi")

    app = Starlette(routes=[Route("/hello/{name}", hello)])
    lightkeeper.instrument(app, service="star")
    with capture_logs(), capture_metrics() as delta:
        assert call(app, "/hello/bob").text == "hi"
    assert delta.value(REQUESTS, route="/hello/{name}") == 1


def test_fastapi_native_otel_metrics_and_logs_are_switched_off() -> None:
    app = make_app()
    assert app._telemetry["metrics"] is True
    lightkeeper.instrument(app, service="native")
    assert app._telemetry["metrics"] is False and app._telemetry["logs"] is False


def test_excluded_paths_are_configurable() -> None:
    app = make_app()
    lightkeeper.instrument(app, service="ex", excluded_paths=("/ping/9",))
    with capture_logs() as logs, capture_metrics() as delta:
        call(app, "/ping/9")
        call(app, "/ping/8")
    assert delta.value(REQUESTS, route="/ping/{n}") == 1
    assert [line["path"] for line in logs if line["event"] == "http_request"] == ["/ping/8"]


def test_metrics_and_health_are_excluded_by_default_but_carry_request_ids() -> None:
    app = make_app()
    lightkeeper.instrument(app, service="ex2")
    with capture_logs() as logs, capture_metrics() as delta:
        for path in ("/metrics", "/health", "/health/live", "/health/ready"):
            response = call(app, path, headers={"X-Request-ID": "probe-1"})
            assert response.status_code == 200 and response.headers["x-request-id"] == "probe-1"
    assert delta.value(REQUESTS) == 0
    assert not [line for line in logs if line["event"] == "http_request"]


def test_included_routers_are_labelled_with_their_full_prefixed_template() -> None:
    from fastapi import APIRouter

    items = APIRouter(prefix="/api/v1")

    @items.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    nested = APIRouter(prefix="/nested")

    @nested.get("/x/{y}")
    async def x(y: str) -> dict[str, str]:
        return {"y": y}

    items.include_router(nested)
    app = FastAPI()
    app.include_router(items, prefix="/outer")
    app.include_router(items, prefix="/legacy")  # the same route objects, twice
    lightkeeper.instrument(app, service="routers")
    with capture_logs(), capture_metrics() as delta:
        for path in ("/outer/api/v1/items/1", "/outer/api/v1/nested/x/2", "/legacy/api/v1/items/3"):
            assert call(app, path).status_code == 200
    assert delta.value(REQUESTS, route="/outer/api/v1/items/{item_id}") == 1
    assert delta.value(REQUESTS, route="/outer/api/v1/nested/x/{y}") == 1
    assert delta.value(REQUESTS, route="/legacy/api/v1/items/{item_id}") == 1
