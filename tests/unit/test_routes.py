from __future__ import annotations

from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from lightkeeper.catalogue import UNMATCHED_ROUTE
from lightkeeper.sdk.routes import RouteResolver


async def endpoint(request):  # pragma: no cover - never called
    return None


def test_unmatched_requests_share_one_value() -> None:
    resolver = RouteResolver()
    assert resolver.template({"path": "/x"}, "") == UNMATCHED_ROUTE


def test_converters_are_dropped_from_the_template() -> None:
    route = Route("/items/{item_id:int}", endpoint)
    assert RouteResolver().template({"route": route, "root_path": ""}, "") == "/items/{item_id}"


def test_static_and_parameterised_mount_prefixes(tmp_path) -> None:
    inner = Route("/users/{user_id}", endpoint)
    static = Mount("/static", app=StaticFiles(directory=str(tmp_path)))
    org = Mount("/orgs/{org_id}/api", routes=[inner])
    v2 = Mount("/v2", routes=[Route("/things/{tid}", endpoint)])
    resolver = RouteResolver()
    resolver.bind_routes([static, org, v2])
    assert (
        resolver.template({"route": inner, "root_path": "/orgs/42/api"}, "")
        == "/orgs/{org_id}/api/users/{user_id}"
    )
    assert resolver.template({"route": v2.routes[0], "root_path": "/v2"}, "") == "/v2/things/{tid}"
    assert resolver.template({"route": static, "root_path": "/static"}, "") == "/static/{path}"
    # an app served under a root path keeps it out of the label
    assert (
        resolver.template({"route": v2.routes[0], "root_path": "/prefix/v2"}, "/prefix") == "/v2/things/{tid}"
    )


def test_parameterised_prefixes_are_not_cached_per_id() -> None:
    inner = Route("/users/{user_id}", endpoint)
    resolver = RouteResolver()
    resolver.bind_routes([Mount("/orgs/{org_id}", routes=[inner])])
    for i in range(1000):
        assert (
            resolver.template({"route": inner, "root_path": f"/orgs/{i}"}, "")
            == "/orgs/{org_id}/users/{user_id}"
        )
    assert len(resolver._cache) <= 1


# --- the label as instrumented apps produce it: FastAPI and plain Starlette alike ---

import asyncio  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402
from starlette.routing import Router  # noqa: E402

import lightkeeper  # noqa: E402
from lightkeeper import catalogue  # noqa: E402
from lightkeeper.testing import capture_logs, capture_metrics  # noqa: E402


async def text(request: Any) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def raw_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"raw"})


def routes_counted(app: Any, paths: list[str]) -> dict[str, str]:
    """path -> route label of its request (and each request counted exactly once)."""

    async def go() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for path in paths:
                await client.get(path)

    with capture_logs() as logs, capture_metrics() as delta:
        asyncio.run(go())
    assert sum(n for _, n in delta.samples(catalogue.HTTP_REQUESTS.name)) == len(paths)
    return {line["path"]: line["route"] for line in logs if line["event"] == "http_request"}


def test_fastapi_plain_routes_docs_and_mounts_get_their_template(tmp_path) -> None:
    (tmp_path / "app.css").write_text("body {}")
    app = FastAPI()
    app.add_route("/plain/{n}", text)

    @app.get("/api/{item}")
    async def api(item: str) -> dict[str, str]:
        return {}

    sub = FastAPI()

    @sub.get("/things/{thing}")
    async def thing(thing: str) -> dict[str, str]:
        return {}

    app.mount("/v2", sub)
    app.mount("/star", Starlette(routes=[Route("/s/{k}", text)]))
    app.mount("/router", Router(routes=[Route("/t/{k}", text)]))
    app.mount("/static", StaticFiles(directory=str(tmp_path)))
    app.mount("/raw", raw_asgi)
    lightkeeper.instrument(app, service="routes-fastapi")
    app.add_route("/late/{n}", text)  # added after instrument(): still found
    got = routes_counted(
        app,
        [
            "/plain/1",
            "/api/2",
            "/docs",
            "/openapi.json",
            "/v2/things/3",
            "/v2/docs",
            "/star/s/4",
            "/router/t/5",
            "/static/app.css",
            "/raw/anything/6",
            "/late/7",
            "/nope/8",
        ],
    )
    assert got == {
        "/plain/1": "/plain/{n}",
        "/api/2": "/api/{item}",
        "/docs": "/docs",
        "/openapi.json": "/openapi.json",
        "/v2/things/3": "/v2/things/{thing}",
        "/v2/docs": "/v2/docs",
        "/star/s/4": "/star/s/{k}",
        "/router/t/5": "/router/t/{k}",
        "/static/app.css": "/static/{path}",
        "/raw/anything/6": "/raw/{path}",
        "/late/7": "/late/{n}",
        "/nope/8": UNMATCHED_ROUTE,
    }


def test_a_pure_starlette_app_with_mounts_gets_its_templates() -> None:
    inner = Starlette(routes=[Route("/deep/{d}", text)])
    app = Starlette(
        routes=[
            Route("/plain/{n}", text),
            Mount("/orgs/{org}", routes=[Route("/users/{user}", text)]),
            Mount("/inner", inner),
            Mount("/raw", raw_asgi),
        ]
    )
    app.add_route("/added/{z}", text)
    lightkeeper.instrument(app, service="routes-starlette")
    got = routes_counted(
        app, ["/plain/1", "/orgs/o-1/users/u-1", "/inner/deep/2", "/raw/x/y", "/added/3", "/no"]
    )
    assert got == {
        "/plain/1": "/plain/{n}",
        "/orgs/o-1/users/u-1": "/orgs/{org}/users/{user}",
        "/inner/deep/2": "/inner/deep/{d}",
        "/raw/x/y": "/raw/{path}",
        "/added/3": "/added/{z}",
        "/no": UNMATCHED_ROUTE,
    }


def test_the_route_comes_from_the_endpoint_when_the_router_records_none() -> None:
    plain = Route("/p/{n}", endpoint)
    resolver = RouteResolver()
    resolver.bind_routes([Route("/other", text), plain])
    assert resolver.template({"endpoint": endpoint, "root_path": ""}, "") == "/p/{n}"
    # one endpoint behind two routes: the request's own path decides
    shared = [Route("/a/{x}", text), Route("/b/{y}", text, methods=["POST"])]
    resolver.bind_routes(shared)
    for method, path, expected in (
        ("GET", "/a/1", "/a/{x}"),
        ("POST", "/b/2", "/b/{y}"),
        ("GET", "/b/3", "/b/{y}"),
    ):
        scope = {"type": "http", "method": method, "path": path, "root_path": "", "endpoint": text}
        assert resolver.template(scope, "") == expected
    # an endpoint no route owns is unmatched, and is not searched for again
    assert resolver.template({"endpoint": raw_asgi, "root_path": ""}, "") == UNMATCHED_ROUTE
    assert id(raw_asgi) in resolver._unknown
    resolver.bind_routes([plain])
    assert resolver.template({"endpoint": endpoint, "root_path": ""}, "") == "/p/{n}"


def test_endpoints_outside_the_route_tree_are_remembered_up_to_a_bound() -> None:
    from lightkeeper.sdk import routes

    resolver = RouteResolver()
    resolver.bind_routes([Route("/p", endpoint)])
    kept = [object() for _ in range(routes._MAX_UNKNOWN_ENDPOINTS + 50)]
    for unknown in kept:
        assert resolver.template({"endpoint": unknown, "root_path": ""}, "") == UNMATCHED_ROUTE
    assert len(resolver._unknown) == routes._MAX_UNKNOWN_ENDPOINTS
