"""The endpoints of a Starlette or FastAPI route table, flat, with their full path templates.

Two shapes nest endpoints. A `Mount` (a sub-app, a router mounted by path) holds its own
route list under its path. FastAPI 0.16x includes a router lazily: one `_IncludedRouter`
entry stands for all of its routes, which it lists, prefixes already applied (nested
includes too), from `effective_route_contexts()`. The SDK (RUM page names) and
`lightkeeper init --app` (route groups) both need the flat list; it is read here only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_MAX_DEPTH = 8  # mounts nest rarely more than twice; a cycle must not recurse forever


@dataclass(frozen=True)
class Endpoint:
    template: str  # the full template, e.g. /admin/items/{item_id}
    regex: re.Pattern[str] | None  # matches a full request path; None under a mount
    methods: frozenset[str]


def endpoints(routes: Any) -> list[Endpoint]:
    """Every endpoint of `routes` (an app's or router's `.routes`), in table order."""
    found: list[Endpoint] = []
    _walk(routes, "", 0, found)
    return found


def _walk(routes: Any, prefix: str, depth: int, out: list[Endpoint]) -> None:
    if depth > _MAX_DEPTH:
        return
    for route in list(routes or ()):
        contexts = getattr(route, "effective_route_contexts", None)
        if callable(contexts):  # a lazily included FastAPI router
            for context in contexts():
                _add(context, prefix, out)
            continue
        inner = getattr(route, "routes", None)
        path = getattr(route, "path", None)
        if inner is not None and not hasattr(route, "endpoint") and isinstance(path, str):  # a Mount
            _walk(inner, prefix + path.rstrip("/"), depth + 1, out)
            continue
        _add(route, prefix, out)


def _add(route: Any, prefix: str, out: list[Endpoint]) -> None:
    if getattr(route, "endpoint", None) is None:
        return
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str) or not template:
        return
    methods = getattr(route, "methods", None) or {"GET"}  # a websocket or plain endpoint
    regex = getattr(route, "path_regex", None)
    out.append(
        Endpoint(
            prefix + template,
            regex if isinstance(regex, re.Pattern) and not prefix else None,
            frozenset(str(m).upper() for m in methods),
        )
    )
