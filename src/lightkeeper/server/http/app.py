"""The server's HTTP surface: status page, SLA and probe APIs, admin API, heartbeat pings.

Route paths and JSON field names are a contract other tools rely on (issue 11); change
them only by adding. Handlers are plain `def`s: they run in the threadpool and use the
store's sync engine, so a slow query never blocks the event loop the probes run on.

Bad input is always a 4xx with a reason: validation errors are answered without
echoing the submitted values (a rejected probe may carry a header value), and an
admin request without a valid token is a 401 even when its body is malformed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import Body, Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from lightkeeper._version import __version__
from lightkeeper.server.config import ServerConfig
from lightkeeper.server.http import (
    auth,
    badge,
    cost_routes,
    deploy_routes,
    metrics,
    reads,
    sla,
    slo_routes,
    status_page,
    uptime,
    windows,
    writes,
)
from lightkeeper.server.http.cache import TtlCache
from lightkeeper.server.http.limits import BodyLimit, check_sizes
from lightkeeper.server.http.models import IncidentOut, MaintenanceIn, MaintenanceOut, ProbeOut
from lightkeeper.server.http.nul import refuse_nul
from lightkeeper.server.store import queries
from lightkeeper.spec.probes import HeartbeatProbe, Probe

Clock = Callable[[], datetime]
PAGE_CACHE_SECONDS = 5.0
MAX_ID = 2**63 - 1  # ids are 64-bit in both stores
_bearer = HTTPBearer(
    auto_error=False, description="The admin token (LIGHTKEEPER_ADMIN_TOKEN or printed at first start)"
)
_ADMIN_METHODS = frozenset({"POST", "PUT", "DELETE"})


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def create_app(
    config: ServerConfig,
    engine: Engine,
    *,
    clock: Clock = _utc_now,
    scheduler_lag: metrics.LagSource | None = None,
    instrument: bool = True,
) -> FastAPI:
    """The ASGI app; `instrument=False` leaves out the SDK (tests that build many apps)."""
    section = config.server
    configured_token = config.admin_token.get_secret_value() if config.admin_token else None
    app = FastAPI(
        title="lightkeeper server",
        version=__version__,
        description="Synthetic probes, time-weighted uptime and SLA, incidents and a public status page.",
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(refuse_nul)],
    )
    app.mount(
        "/static",
        StaticFiles(directory=str(resources.files("lightkeeper.server.web") / "static")),
        name="static",
    )
    app.add_middleware(BodyLimit)

    def is_admin(request: Request) -> bool:
        return auth.is_admin(engine, configured_token, auth.bearer(request.headers.get("authorization")))

    def require_admin(
        request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> None:
        if not is_admin(request):
            raise HTTPException(401, "missing or wrong admin token", headers={"WWW-Authenticate": "Bearer"})

    def require_reader(
        request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> None:
        if not section.public and not is_admin(request):
            raise HTTPException(
                401, "this server is private: send the admin token", headers={"WWW-Authenticate": "Bearer"}
            )

    # During an outage everyone reloads the status page at once: it is rendered at most
    # once per PAGE_CACHE_SECONDS, and at once after an admin change.
    page_cache = TtlCache(PAGE_CACHE_SECONDS)

    def require_admin_and_refresh(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> None:
        require_admin(request, credentials)
        page_cache.clear()

    admin = [Depends(require_admin_and_refresh)]
    reader = [Depends(require_reader)]

    async def anonymous_admin_call(request: Request) -> bool:
        admin_route = request.method in _ADMIN_METHODS and request.url.path.startswith("/api/")
        return admin_route and not await run_in_threadpool(is_admin, request)

    def unauthorized() -> JSONResponse:
        return JSONResponse({"detail": "missing or wrong admin token"}, 401, {"WWW-Authenticate": "Bearer"})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # a body FastAPI cannot even parse is refused before any dependency runs
        if exc.status_code == 400 and await anonymous_admin_call(request):
            return unauthorized()
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        if await anonymous_admin_call(request):
            return unauthorized()
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, 422)

    def local(moment: datetime) -> str:
        from zoneinfo import ZoneInfo

        return moment.astimezone(ZoneInfo(section.timezone)).strftime("%Y-%m-%d %H:%M %Z")

    # --- public pages ----------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, include_in_schema=False, dependencies=reader)
    def status_html() -> HTMLResponse:
        html = page_cache.get()
        if html is None:
            context = status_page.build(engine, section, clock())
            html = page_cache.put(status_page.render("status.html.j2", {**context, "local": local}))
        return HTMLResponse(html, headers={"Cache-Control": f"max-age={PAGE_CACHE_SECONDS:.0f}"})

    @app.get("/incidents", response_class=HTMLResponse, include_in_schema=False, dependencies=reader)
    def incidents_html(day: Annotated[date, Query()]) -> HTMLResponse:
        if day == date.max:  # its end is past the last representable instant
            raise HTTPException(422, f"day: choose a day before {date.max.isoformat()}")
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)  # the bars' days are UTC days
        found = reads.incidents(engine, since=start, until=start + timedelta(days=1))
        context = {
            "title": "Status",
            "timezone": section.timezone,
            "day": day.isoformat(),
            "incidents": found,
            "component_of": {v.name: (v.probe.component or v.name) for v in reads.probes(engine)},
            "local": local,
        }
        return HTMLResponse(status_page.render("incidents.html.j2", context))

    @app.get("/badge/{probe}.svg", dependencies=reader, responses={200: {"content": {"image/svg+xml": {}}}})
    def badge_svg(probe: str) -> Response:
        found = reads.probes(engine, probe)
        if not found:
            raise HTTPException(404, f"no probe named {probe!r}")
        return Response(
            badge.svg(found[0].probe.component or probe, found[0].state),
            media_type="image/svg+xml",
            headers={"Cache-Control": "max-age=60"},
        )

    @app.get("/feed.json", dependencies=reader)
    def feed() -> JSONResponse:
        """Incidents as a JSON Feed 1.1, newest first."""
        items = []
        components = {v.name: (v.probe.component or v.name) for v in reads.probes(engine)}
        for i in reads.incidents(engine, limit=50):
            what = components.get(i.probe, i.probe)
            status = "resolved" if i.resolved_at else "ongoing"
            items.append(
                {
                    "id": f"incident-{i.id}",
                    "title": f"{what}: outage ({status})",
                    "content_text": i.cause or "",
                    "date_published": _iso(i.started_at),
                    "date_modified": _iso(i.resolved_at or i.started_at),
                    "tags": [i.probe, status],
                }
            )
        return JSONResponse(
            {
                "version": "https://jsonfeed.org/version/1.1",
                "title": "Incidents",
                "home_page_url": "/",
                "items": items,
            },
            media_type="application/feed+json",
        )

    # --- read APIs -------------------------------------------------------------------
    @app.get("/api/probes", dependencies=reader, response_model=list[ProbeOut])
    def list_probes(request: Request) -> list[dict[str, Any]]:
        out = []
        for view in reads.probes(engine):
            item: dict[str, Any] = {
                "name": view.name,
                "type": view.probe.type,
                "component": view.probe.component or view.name,
                "interval_seconds": view.probe.interval_seconds,
                "state": view.state,
                "last_checked_at": _iso(view.last_checked_at),
                "last_latency_ms": view.last_latency_ms,
                "last_error": None if view.state == "up" else view.last_error,
            }
            if isinstance(view.probe, HeartbeatProbe):
                item["ping_url"] = (
                    str(request.base_url).rstrip("/") + "/ping/" + auth.ping_token(engine, view.name)
                )
            out.append(item)
        return out

    @app.get("/api/incidents", dependencies=reader, response_model=list[IncidentOut])
    def list_incidents(
        probe: Annotated[str | None, Query(max_length=200)] = None,
        since: Annotated[
            datetime | None, Query(description="ISO-8601; incidents still open at or after it")
        ] = None,
    ) -> list[dict[str, Any]]:
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        now = clock()
        return [
            {
                "id": i.id,
                "probe": i.probe,
                "started_at": _iso(i.started_at),
                "resolved_at": _iso(i.resolved_at),
                "duration_seconds": round(i.duration_seconds(now), 3),
                "cause": i.cause,
            }
            for i in reads.incidents(engine, probe=probe, since=since)
        ]

    @app.get("/sla/uptime", dependencies=reader)
    def sla_uptime(
        window: Annotated[str | None, Query(description="1h ... 400d", max_length=10)] = None,
        month: Annotated[
            str | None,
            Query(description="Calendar month in the configured time zone, e.g. 2026-11", max_length=10),
        ] = None,
        probe: Annotated[str | None, Query(max_length=200)] = None,
    ) -> dict[str, Any]:
        now = clock()
        if window is not None and month is not None:
            raise HTTPException(422, "give either window or month, not both")
        try:
            span = (
                windows.calendar_month(month, section.timezone, now)
                if month
                else windows.rolling(window or "30d", now)
            )
        except windows.WindowError as exc:
            raise HTTPException(422, str(exc)) from None
        views = reads.probes(engine, probe)
        if probe is not None and not views:
            raise HTTPException(404, f"no probe named {probe!r}")
        measured = queries.uptime(engine, probe, span.start, span.end, now=now)
        return {
            "window": span.label,
            "from": _iso(span.start),
            "to": _iso(span.end),
            "probes": [uptime.rounded(m.as_dict()) for m in measured],
        }

    @app.get("/sla/status", dependencies=reader)
    def sla_status() -> dict[str, Any]:
        return sla.status(engine, section, clock(), config.spec, config.slo_environment)

    @app.get("/api/report/sla", dependencies=reader)
    def sla_report(
        month: Annotated[
            str | None, Query(max_length=10, description="e.g. 2026-11; default: this month")
        ] = None,
    ) -> dict[str, Any]:
        now = clock()
        try:
            return sla.report(engine, section, month or windows.current_month(section.timezone, now), now)
        except windows.WindowError as exc:
            raise HTTPException(422, str(exc)) from None

    # --- admin -----------------------------------------------------------------------
    @app.post("/api/probes", dependencies=admin, status_code=201, response_model=ProbeOut)
    def create_probe(request: Request, probe: Annotated[Probe, Body()]) -> dict[str, Any]:
        check_sizes(probe.model_dump(mode="json"))
        _write(lambda: writes.save_probe(engine, probe, "api", create=True))
        return list_probes_one(request, probe.name)

    @app.put("/api/probes/{name}", dependencies=admin, response_model=ProbeOut)
    def replace_probe(request: Request, name: str, probe: Annotated[Probe, Body()]) -> dict[str, Any]:
        if probe.name != name:
            raise HTTPException(422, f"the body names probe {probe.name!r} but the URL names {name!r}")
        check_sizes(probe.model_dump(mode="json"))
        _write(lambda: writes.save_probe(engine, probe, "api", create=False))
        return list_probes_one(request, name)

    @app.delete("/api/probes/{name}", dependencies=admin, status_code=204)
    def remove_probe(name: str) -> Response:
        _write(lambda: writes.delete_probe(engine, name))
        return Response(status_code=204)

    @app.post("/api/maintenance", dependencies=admin, status_code=201, response_model=MaintenanceOut)
    def create_maintenance(window: MaintenanceIn) -> dict[str, Any]:
        known = {v.name for v in reads.probes(engine)}
        unknown = sorted(set(window.probes) - known)
        if unknown:
            raise HTTPException(422, f"unknown probes: {', '.join(unknown)}")
        window_id = writes.add_maintenance(engine, **window.model_dump())
        return {"id": window_id, **window.model_dump(mode="json")}

    @app.delete("/api/maintenance/{window_id}", dependencies=admin, status_code=204)
    def remove_maintenance(window_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
        _write(lambda: writes.delete_maintenance(engine, window_id))
        return Response(status_code=204)

    def list_probes_one(request: Request, name: str) -> dict[str, Any]:
        return next(p for p in list_probes(request) if p["name"] == name)

    # --- heartbeat pings -------------------------------------------------------------
    def ping(token: str, kind: Literal["success", "start", "fail"], exit_code: int | None) -> dict[str, Any]:
        names = [v.name for v in reads.probes(engine) if isinstance(v.probe, HeartbeatProbe)]
        probe = (
            auth.probe_for_ping_token(engine, token, names) if len(token) == auth.PING_TOKEN_CHARS else None
        )
        if probe is None:
            raise HTTPException(404, "unknown ping token")
        at = writes.record_ping(engine, probe, kind, exit_code)
        return {"probe": probe, "kind": kind, "exit_code": exit_code, "at": _iso(at)}

    @app.post("/ping/{token}")
    def ping_success(token: str) -> dict[str, Any]:
        return ping(token, "success", None)

    @app.post("/ping/{token}/start")
    def ping_start(token: str) -> dict[str, Any]:
        return ping(token, "start", None)

    @app.post("/ping/{token}/fail")
    def ping_fail(token: str) -> dict[str, Any]:
        return ping(token, "fail", None)

    @app.post("/ping/{token}/{exit_code}")
    def ping_exit(token: str, exit_code: Annotated[int, Path(ge=0, le=255)]) -> dict[str, Any]:
        return ping(token, "success" if exit_code == 0 else "fail", exit_code)

    app.include_router(deploy_routes.router(engine, admin, reader, clock))
    app.include_router(cost_routes.router(config, engine, clock))
    metrics.install(engine, scheduler_lag)
    if instrument:
        import lightkeeper
        from lightkeeper.health import sqlalchemy as database_check

        lightkeeper.instrument(
            app, service=config.service, environment=config.environment, checks=[database_check(engine)]
        )
    slos = slo_routes.router(engine, config.spec, clock, reader, section.timezone, config.slo_environment)
    app.include_router(slos)
    return app


def _write(action: Callable[[], None]) -> None:
    try:
        action()
    except writes.NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except writes.Conflict as exc:
        raise HTTPException(409, str(exc)) from None
