"""The `route` label: the template the router matched, never the raw path.

Starlette's router records the matched route in `scope["route"]` and grows
`scope["root_path"]` by each mount's matched prefix. Reading those after the app has
run costs a dict lookup; matching the route table again (what several exporters do)
costs a regex per route per request. Mount prefixes with parameters
(`/orgs/{org_id}/v2`) are the one case that needs a pattern, and only for requests
that went through such a mount.

FastAPI's router sets `scope["route"]` for its own API routes only: a route added
with `app.add_route`, its `/docs` and `/openapi.json`, and a mount whose app is no
router (static files, a raw ASGI app) leave just `scope["endpoint"]`, which every
Starlette route sets when it matches. The route that owns that endpoint is found
once, in an index of the route tree, so those requests cost a lookup too. Nothing
matched (a 404) is the one case with neither key: `<unmatched>`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from lightkeeper.catalogue import MAX_LABEL_VALUE_LENGTH, UNMATCHED_ROUTE

_PARAM = re.compile(r"{([^}:]+)(:[^}]+)?}")
# Endpoints seen in scopes but owned by no route in the tree, remembered up to this.
_MAX_UNKNOWN_ENDPOINTS = 10_000


def _template_of(route: Any) -> str | None:
    fmt = getattr(route, "path_format", None) or getattr(route, "path", None)
    return fmt if isinstance(fmt, str) else None


def _effective_template(context: Any) -> str | None:
    fmt = getattr(getattr(context, "starlette_route", None), "path_format", None) or getattr(
        context, "path_format", None
    )
    return fmt if isinstance(fmt, str) and fmt else None


def _is_mount(route: Any) -> bool:
    return type(route).__name__ == "Mount" or (
        hasattr(route, "routes") and _template_of(route) is not None and not hasattr(route, "endpoint")
    )


def _matched(route: Any, scope: dict[str, Any]) -> bool:
    try:
        match, _ = route.matches(scope)
    except Exception:  # a custom route that cannot judge a finished scope
        return False
    return bool(getattr(match, "value", 0))  # Match.FULL or PARTIAL (a 405)


class RouteResolver:
    """Maps (matched route, mount prefix) to a template; one per instrumented app."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], str] = {}
        self._last: tuple[Any, str] = (None, "")
        self._static_prefixes: dict[str, str] | None = None
        self._param_prefixes: list[tuple[re.Pattern[str], str]] = []
        self._routes: Any = None
        # id(endpoint) -> (endpoint, the routes it serves); built from the route tree
        # on the first request without scope["route"]. Misses go to _unknown.
        self._owners: dict[int, tuple[Any, list[Any]]] | None = None
        self._unknown: dict[int, tuple[Any, list[Any]]] = {}

    def bind_routes(self, routes: Any) -> None:
        """Remember the app's route list; mount prefixes are indexed lazily."""
        self._routes = routes
        self._static_prefixes = None
        self._owners = None
        self._unknown = {}

    def _index_endpoints(self) -> dict[int, tuple[Any, list[Any]]]:
        owners: dict[int, tuple[Any, list[Any]]] = {}

        def walk(routes: Iterable[Any], depth: int) -> None:
            if depth > 8:
                return
            for route in routes or ():
                # Route and WebSocketRoute match with their endpoint, Mount and Host
                # with their app. One function may serve several routes.
                owned = getattr(route, "endpoint", None) if not _is_mount(route) else None
                owned = owned if owned is not None else getattr(route, "app", None)
                if owned is not None:
                    owners.setdefault(id(owned), (owned, []))[1].append(route)
                if _is_mount(route):
                    walk(getattr(route, "routes", ()), depth + 1)

        walk(self._routes or (), 0)
        return owners

    def _candidates(self, endpoint: Any) -> list[Any]:
        owners = self._owners
        if owners is None:
            owners = self._owners = self._index_endpoints()
        found = owners.get(id(endpoint)) or self._unknown.get(id(endpoint))
        if found is not None and found[0] is endpoint:
            return found[1]
        # A route added after the index was built: index again, and remember a miss
        # (an endpoint outside the route tree) so it is not searched for every time.
        owners = self._owners = self._index_endpoints()
        found = owners.get(id(endpoint))
        if found is not None and found[0] is endpoint:
            return found[1]
        if len(self._unknown) < _MAX_UNKNOWN_ENDPOINTS:
            self._unknown[id(endpoint)] = (endpoint, [])
        return []

    def _owner_of(self, endpoint: Any, scope: dict[str, Any]) -> Any:
        """The route whose match put `endpoint` in the scope; None if none is known."""
        candidates = self._candidates(endpoint)
        if len(candidates) == 1:
            return candidates[0]
        # One endpoint behind several routes: ask each which one this request was
        # (a regex per candidate, paid only by such endpoints).
        for route in candidates:
            if _matched(route, scope):
                return route
        return candidates[0] if candidates else None

    def _index_mounts(self) -> dict[str, str]:
        static: dict[str, str] = {}
        params: list[tuple[re.Pattern[str], str]] = []

        def walk(routes: Iterable[Any], prefix: str, depth: int) -> None:
            if depth > 8:
                return
            for route in routes or ():
                if not _is_mount(route):
                    continue
                own = (_template_of(route) or "").removesuffix("/{path}")
                full = prefix + own
                if _PARAM.search(full):
                    pattern = "^" + _PARAM.sub(
                        r"[^/]+", re.escape(full).replace(r"\{", "{").replace(r"\}", "}")
                    )
                    params.append((re.compile(pattern + "$"), full))
                else:
                    static[full] = full
                walk(getattr(route, "routes", ()), full, depth + 1)

        walk(self._routes or (), "", 0)
        self._param_prefixes = params
        self._static_prefixes = static
        return static

    def _prefix_template(self, raw_prefix: str) -> str:
        static = self._static_prefixes if self._static_prefixes is not None else self._index_mounts()
        found = static.get(raw_prefix)
        if found is not None:
            return found
        for pattern, template in self._param_prefixes:
            if pattern.match(raw_prefix):
                return template
        return "/{mount}"

    def template(self, scope: dict[str, Any], base_root_path: str) -> str:
        """Route template for a finished (or in-flight) request."""
        route = scope.get("route")
        if route is None:
            endpoint = scope.get("endpoint")
            if endpoint is None:
                return UNMATCHED_ROUTE
            route = self._owner_of(endpoint, scope)
            if route is None:
                return UNMATCHED_ROUTE
        root = scope.get("root_path", base_root_path)
        fastapi_scope = scope.get("fastapi")
        # FastAPI >= 0.16x keeps the original route object for included routers and
        # records the prefixed template in its "effective route context".
        effective = fastapi_scope.get("effective_route_context") if fastapi_scope else None
        if effective is not None and getattr(effective, "original_route", None) is route:
            own = _effective_template(effective) or UNMATCHED_ROUTE
        else:
            last = self._last
            if last[0] is route and root == base_root_path:
                return last[1]  # the same route as the previous request: the common case
            own = _template_of(route) or UNMATCHED_ROUTE
            if root == base_root_path:
                own = own[:MAX_LABEL_VALUE_LENGTH]
                self._last = (route, own)
                return own
        if root == base_root_path:
            return own[:MAX_LABEL_VALUE_LENGTH]
        raw_prefix = root[len(base_root_path) :] if root.startswith(base_root_path) else root
        key = (own, raw_prefix)
        found = self._cache.get(key)
        if found is not None:
            return found
        result, cacheable = self._with_prefix(route, own, raw_prefix)
        result = result[:MAX_LABEL_VALUE_LENGTH]
        if cacheable:
            self._cache[key] = result
        return result

    def _with_prefix(self, route: Any, own: str, raw_prefix: str) -> tuple[str, bool]:
        if not raw_prefix:
            return own, True
        prefix = self._prefix_template(raw_prefix)
        # A Mount left as the innermost route (e.g. StaticFiles) is already part of
        # the prefix: its template is the prefix plus the remainder.
        result = prefix + "/{path}" if _is_mount(route) else prefix + own
        # A parameterised mount's raw prefix holds ids: caching on it would grow
        # without bound, so only parameter-free prefixes are cached.
        return result, prefix == raw_prefix
