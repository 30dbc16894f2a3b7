"""The starter `lightkeeper.yaml` written by `lightkeeper init`.

With `--app module:app` the FastAPI (or Starlette) app is imported, its routes collected
(mounted sub-apps included) and sorted into route groups by what they do: `auth` (login,
tokens, sessions), `writes` (POST/PUT/PATCH/DELETE) and `reads` (GET/HEAD). Each group can
get a latency SLO, so the starter describes the real service rather than a placeholder;
how busy or how named a group is says nothing about whether users wait on it.
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

from lightkeeper import route_table

# Framework plumbing that should not shape SLOs.
_SKIP = re.compile(
    r"/(docs|redoc|openapi\.json|metrics|health\w*|healthz|livez|readyz|ping|favicon\.ico)(/|$)"
)
_AUTH = re.compile(
    r"(^|/)[^/]*(login|logout|auth|token|session|signin|signup|sign-in|sign-up|password|oauth|sso)"
)
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_READ_METHODS = frozenset({"GET", "HEAD"})
_DEFAULT_TITLES = frozenset({"", "FastAPI", "Starlette"})

# Group -> (latency threshold in seconds, a bucket of http_request_duration_seconds; what it covers).
GROUPS: dict[str, tuple[float, str]] = {
    "reads": (0.5, "Reads (GET) answered within 500 ms."),
    "writes": (1.0, "Writes (POST, PUT, PATCH, DELETE) answered within 1 s."),
    "auth": (1.0, "Sign-in, token and session requests answered within 1 s."),
}


class AppImportError(ValueError):
    """The `--app` reference could not be imported or holds no routes."""


@dataclass(frozen=True)
class Route:
    path: str
    methods: frozenset[str]


@dataclass(frozen=True)
class LatencySLO:
    name: str
    group: str
    threshold: float
    description: str


@dataclass(frozen=True)
class AppInfo:
    title: str | None
    routes: list[Route]


def service_name(text: str) -> str:
    """A valid spec service name derived from e.g. the app's title or the project folder."""
    name = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")
    if not name or not name[0].isalpha():
        name = f"svc-{name}" if name else "api"
    return name[:63]


def load_app(ref: str) -> AppInfo:
    """Title and routes of `module:attribute`, importing from the current directory."""
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
    found = (Route(e.template, e.methods) for e in route_table.endpoints(getattr(app, "routes", None)))
    routes = [r for r in found if r.path.startswith("/") and not _SKIP.search(r.path)]
    if not routes:
        raise AppImportError(f"--app {ref!r}: the app declares no routes to build SLOs from")
    title = getattr(app, "title", None)
    return AppInfo(title if isinstance(title, str) and title not in _DEFAULT_TITLES else None, routes)


def group_routes(routes: list[Route]) -> dict[str, list[str]]:
    """`auth` by path; else `reads` when the template answers GET, else `writes`.

    SLIs select by route template, not by method, so a template that both reads and
    writes (GET and POST /items) counts where most traffic usually is: with the reads.
    """
    methods: dict[str, set[str]] = {}
    for route in routes:  # one template may be declared once per method
        methods.setdefault(route.path, set()).update(route.methods)
    groups: dict[str, set[str]] = {}
    for path, declared in methods.items():
        if _AUTH.search(path.lower()):
            kind = "auth"
        elif declared & _READ_METHODS:
            kind = "reads"
        elif declared & _WRITE_METHODS:
            kind = "writes"
        else:
            continue
        groups.setdefault(kind, set()).add(path)
    return {g: sorted(groups[g]) for g in GROUPS if g in groups}


def render(service: str, routes: list[Route] | None = None, slo_groups: list[str] | None = None) -> str:
    """The commented starter spec; route groups, and latency SLOs for `slo_groups` (default: all)."""
    groups = group_routes(routes) if routes else {}
    chosen = [g for g in groups if slo_groups is None or g in slo_groups]
    latency = [LatencySLO(f"{g}-latency", g, GROUPS[g][0], GROUPS[g][1]) for g in chosen]
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
