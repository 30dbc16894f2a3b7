"""The flat endpoint list behind RUM page names and `init --app`, on every way FastAPI and
Starlette nest routes: plain, included routers (lazy in FastAPI 0.16x), nested includes, mounts."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.routing import Mount, Route, Router

from lightkeeper import route_table
from lightkeeper.sdk.rum import PageNames


def _app() -> FastAPI:
    inner = APIRouter(prefix="/inner")

    @inner.get("/items/{item_id}")
    def item(item_id: int) -> dict[str, int]:
        return {}

    outer = APIRouter(prefix="/outer")
    outer.include_router(inner)

    @outer.post("/items")
    def create() -> dict[str, int]:
        return {}

    app = FastAPI()

    @app.get("/plain/{name}")
    def plain(name: str) -> dict[str, int]:
        return {}

    app.include_router(outer)
    sub = FastAPI()
    sub.include_router(inner)
    app.mount("/admin", sub)
    app.mount("/static", Router([Route("/logo.png", lambda request: None)]))
    return app


def test_every_endpoint_with_its_full_template_and_methods() -> None:
    found = {(e.template, e.methods) for e in route_table.endpoints(_app().routes)}
    assert {
        ("/plain/{name}", frozenset({"GET"})),
        ("/outer/inner/items/{item_id}", frozenset({"GET"})),  # nested includes, prefixes applied
        ("/outer/items", frozenset({"POST"})),
        ("/admin/inner/items/{item_id}", frozenset({"GET"})),  # an included router inside a mount
        ("/static/logo.png", frozenset({"GET", "HEAD"})),
    } <= found


def test_regexes_match_full_paths_outside_mounts_only() -> None:
    by_template = {e.template: e.regex for e in route_table.endpoints(_app().routes)}
    regex = by_template["/outer/inner/items/{item_id}"]
    assert regex is not None and regex.match("/outer/inner/items/42")
    assert by_template["/admin/inner/items/{item_id}"] is None  # its regex is relative to the mount


def test_rum_page_names_resolve_templates_of_included_routers() -> None:
    pages = PageNames(_app().routes)
    assert pages.resolve("/outer/inner/items/{item_id}") == "/outer/inner/items/{item_id}"
    assert pages.resolve("/outer/inner/items/93812?tab=2") == "/outer/inner/items/{item_id}"
    assert pages.resolve("/admin/inner/items/{item_id}") == "/admin/inner/items/{item_id}"
    assert pages.resolve("/nowhere") == "other"


def test_a_mount_cycle_stops() -> None:
    router = Router()
    router.routes.append(Mount("/loop", app=router))
    assert route_table.endpoints(router.routes) == []
