"""SLO routes: the budget history and monthly report APIs, and the SLO page with its burn-down charts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.params import Depends
from fastapi.responses import HTMLResponse
from sqlalchemy import Engine

from lightkeeper.server.http import sla, status_page
from lightkeeper.server.slo import evaluate, report
from lightkeeper.spec.models import Spec

WIDTH, HEIGHT = 600, 160


def burn_down_points(history: Sequence[dict[str, Any]]) -> str:
    """SVG polyline points: budget remaining (clamped to 0..1) per day, left to right."""
    step = WIDTH / max(1, len(history) - 1)
    points = []
    for i, day in enumerate(history):
        value = day["error_budget_remaining_ratio"]
        if value is None:
            continue
        y = HEIGHT * (1 - min(1.0, max(0.0, value)))
        points.append(f"{i * step:.1f},{y:.1f}")
    return " ".join(points)


def router(
    engine: Engine,
    spec: Spec | None,
    clock: Callable[[], datetime],
    reader: Sequence[Depends],
    timezone: str,
    environment: str | None = None,
) -> APIRouter:
    """`environment`: the one the server evaluates SLOs for (`--environment`, else the spec's first)."""
    api = APIRouter(dependencies=list(reader))
    by_name = {s.name: s for s in spec.slos} if spec is not None else {}
    env = environment or (next(iter(spec.environments), "") if spec is not None else "")

    @api.get("/api/slo/{name}/history")
    def slo_history(name: str, days: Annotated[int, Query(ge=1, le=400)] = 30) -> dict[str, Any]:
        slo = by_name.get(name)
        if slo is None:
            raise HTTPException(404, f"no SLO named {name!r}")
        return {"name": name, "days": evaluate.history(engine, slo, clock(), days, env)}

    @api.get("/api/slo/{name}/report")
    def slo_report(name: str, month: Annotated[str, Query(max_length=7)]) -> dict[str, Any]:
        slo = by_name.get(name)
        if slo is None:
            raise HTTPException(404, f"no SLO named {name!r}")
        try:
            return report.report(engine, slo, month, clock(), env)
        except report.BadMonth as exc:
            raise HTTPException(400, str(exc)) from None

    @api.get("/slo", response_class=HTMLResponse, include_in_schema=False)
    def slo_page() -> HTMLResponse:
        now = clock()
        states = sla.slo_states(engine, spec, now, env)
        charts = {n: burn_down_points(evaluate.history(engine, s, now, 30, env)) for n, s in by_name.items()}
        context = {
            "title": "SLOs",
            "slos": states,
            "charts": charts,
            "width": WIDTH,
            "height": HEIGHT,
            "timezone": timezone,
        }
        return HTMLResponse(status_page.render("slo.html.j2", context))

    return api
