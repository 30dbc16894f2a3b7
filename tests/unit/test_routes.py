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
