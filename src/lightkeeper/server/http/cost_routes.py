"""LLM cost routes: event ingest, the summary API and the Cost page.

Ingest accepts the admin token or the ingest token (`LIGHTKEEPER_LLM_INGEST_TOKEN`), so
services can send events without holding the key that changes probes. The body is
parsed here rather than by FastAPI, so an ingest-token client gets a 422 with reasons
(never the submitted values) instead of the app-wide "anonymous admin call → 401". The
summary and the page need the admin token: spend per workspace is not public.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy import Engine

from lightkeeper.server.config import ServerConfig
from lightkeeper.server.cost import budgets, ingest, summary
from lightkeeper.server.cost.chart import daily_svg
from lightkeeper.server.cost.schema import CostBatch
from lightkeeper.server.http import auth, status_page

ENV_INGEST_TOKEN = "LIGHTKEEPER_LLM_INGEST_TOKEN"  # noqa: S105 (a variable name)
_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


def router(
    config: ServerConfig,
    engine: Engine,
    clock: Callable[[], datetime],
    environ: Mapping[str, str] | None = None,
) -> APIRouter:
    env = os.environ if environ is None else environ
    ingest_token = env.get(ENV_INGEST_TOKEN) or None
    admin_token = config.admin_token.get_secret_value() if config.admin_token else None
    spec_budgets = config.spec.budgets if config.spec is not None else None
    routes = APIRouter()

    def presented(request: Request) -> str | None:
        return auth.bearer(request.headers.get("authorization"))

    def require_admin(request: Request) -> None:
        if not auth.is_admin(engine, admin_token, presented(request)):
            raise HTTPException(401, "missing or wrong admin token", headers=_UNAUTHORIZED)

    def require_ingest(request: Request) -> None:
        token = presented(request)
        if token and ingest_token and hmac.compare_digest(token.encode(), ingest_token.encode()):
            return
        if not auth.is_admin(engine, admin_token, token):
            raise HTTPException(401, "missing or wrong ingest token", headers=_UNAUTHORIZED)

    @routes.post("/api/llm/events", dependencies=[Depends(require_ingest)])
    async def receive_events(request: Request) -> dict[str, int]:
        """A batch of cost events: `{"events": [...]}`, at most 1000, idempotent by event_id."""
        try:
            batch = CostBatch.model_validate_json(await request.body())
        except ValidationError as exc:
            errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
            raise HTTPException(422, errors) from None
        from starlette.concurrency import run_in_threadpool

        stored = await run_in_threadpool(ingest.store_events, engine, batch.events)
        return {"received": len(batch.events), "stored": stored, "duplicates": len(batch.events) - stored}

    def window(start: date | None, end: date | None) -> tuple[date, date, date]:
        today = clock().astimezone(UTC).date()
        end = end or today
        start = start or end.replace(day=1)
        if start > end:
            raise HTTPException(422, "from must not be after to")
        if (end - start).days > 400:
            raise HTTPException(422, "at most 400 days at once")
        return start, end, today

    @routes.get("/api/cost/summary", dependencies=[Depends(require_admin)])
    def cost_summary(
        start: Annotated[
            date | None, Query(alias="from", description="UTC day; default: 1st of the month")
        ] = None,
        end: Annotated[
            date | None, Query(alias="to", description="UTC day, inclusive; default: today")
        ] = None,
        group_by: Annotated[summary.GroupBy, Query()] = "model",
    ) -> dict[str, Any]:
        first, last, today = window(start, end)
        out = summary.build(engine, first, last, group_by, today)
        out["budgets"] = budget_rows()
        return out

    def budget_rows() -> list[dict[str, Any]]:
        if spec_budgets is None:
            return []
        return [
            {
                "scope": s.scope,
                "limit_usd": s.limit_usd,
                "spent_usd": round(s.spent_usd, 6),
                "percent": round(s.percent, 1),
            }
            for s in budgets.states(engine, spec_budgets, clock())
        ]

    @routes.get(
        "/cost", response_class=HTMLResponse, include_in_schema=False, dependencies=[Depends(require_admin)]
    )
    def cost_page(
        start: Annotated[date | None, Query(alias="from")] = None,
        end: Annotated[date | None, Query(alias="to")] = None,
    ) -> HTMLResponse:
        first, last, today = window(start, end)
        data = summary.build(engine, first, last, "model", today)
        by_operation = summary.build(engine, first, last, "operation", today)["breakdown"]
        context = {
            "title": "LLM cost",
            "timezone": "UTC",
            "data": data,
            "by_operation": by_operation,
            "budgets": budget_rows(),
            "chart": daily_svg([(date.fromisoformat(d["day"]), d["cost_usd"]) for d in data["daily"]]),
            "previous": (first - timedelta(days=1)).replace(day=1).isoformat(),
        }
        return HTMLResponse(status_page.render("cost.html.j2", context))

    return routes
