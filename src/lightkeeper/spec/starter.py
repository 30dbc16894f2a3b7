"""The starter `lightkeeper.yaml` written by `lightkeeper init`.

With `--app module:app` the FastAPI (or Starlette) app is imported and its route
templates grouped by their first path segment after `/api` (and a version such as
`v1`); each group gets a latency SLO, so the starter already describes the real
service rather than a placeholder.
"""

from __future__ import annotations

import importlib
import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

# Framework plumbing that should not shape SLOs.
_SKIP = re.compile(r"^/(docs|redoc|openapi\.json|metrics|health)(/|$)")
_VERSION = re.compile(r"^v\d+$")
MAX_LATENCY_SLOS = 3


class AppImportError(ValueError):
    """The `--app` reference could not be imported or holds no routes."""


@dataclass(frozen=True)
class LatencySLO:
    name: str
    group: str
    description: str


def service_name(text: str) -> str:
    """A valid spec service name derived from e.g. the project folder."""
    name = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")
    if not name or not name[0].isalpha():
        name = f"svc-{name}" if name else "api"
    return name[:63]


def app_routes(ref: str) -> list[str]:
    """Route templates of `module:attribute`, importing from the current directory."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise AppImportError(f"--app {ref!r}: write module:attribute, e.g. --app myservice.main:app")
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise AppImportError(
            f"--app {ref!r}: importing {module_name} failed ({exc.__class__.__name__}: {exc}); "
            "run init from the folder your app imports from"
        ) from None
    app: Any = getattr(module, attr, None)
    if app is None:
        raise AppImportError(f"--app {ref!r}: {module_name} has no attribute {attr!r}")
    found = sorted({p for p in _paths(app) if p.startswith("/") and not _SKIP.match(p)})
    if not found:
        raise AppImportError(f"--app {ref!r}: the app declares no routes to build SLOs from")
    return found


def _paths(app: Any) -> list[str]:
    """Route templates: FastAPI's OpenAPI paths (they include routers however mounted), else Starlette's."""
    openapi = getattr(app, "openapi", None)
    if callable(openapi):
        try:
            return [str(p) for p in openapi().get("paths", {})]
        except Exception:  # noqa: S110 - a broken schema still leaves the plain route list
            pass
    return [p for r in getattr(app, "routes", []) if isinstance(p := getattr(r, "path", None), str)]


def group_routes(routes: list[str]) -> dict[str, list[str]]:
    """`/api/v1/items/{id}` -> group `items`; routes outside /api group by their first segment."""
    groups: dict[str, list[str]] = {}
    for route in routes:
        parts = [p for p in route.split("/") if p]
        if parts and parts[0] == "api":
            parts = parts[1:]
        if parts and _VERSION.match(parts[0]):
            parts = parts[1:]
        head = next((p for p in parts if not p.startswith("{")), "root")
        groups.setdefault(service_name(head), []).append(route)
    return dict(sorted(groups.items()))


def render(service: str, routes: list[str] | None = None) -> str:
    """The commented starter spec; route groups and latency SLOs when routes are known."""
    groups = group_routes(routes) if routes else {}
    busiest = sorted(groups, key=lambda g: (-len(groups[g]), g))[:MAX_LATENCY_SLOS]
    latency = [
        LatencySLO(f"{g}-latency", g, f"{g} requests answered within 500 ms.") for g in sorted(busiest)
    ]
    text = resources.files("lightkeeper.spec").joinpath("templates/starter.yaml.j2").read_text("utf-8")
    # Renders YAML, not HTML: escaping would corrupt quotes in route templates.
    env = jinja2.Environment(
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701
    )
    return env.from_string(text).render(
        service=service_name(service), route_groups=groups, latency_slos=latency
    )
