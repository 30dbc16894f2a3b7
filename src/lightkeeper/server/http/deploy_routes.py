"""`/api/deployments`: CI reports deployment starts and finishes; people read them back.

Writes need the admin token (they drive alerts and the DORA numbers); reads follow
the server's `public` setting like the other read APIs. Names become metric labels,
so they are validated strictly here; versions never become labels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.params import Depends
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from lightkeeper.server.deploys import dora, metrics, store

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$"
MAX_DAYS = 400
Name = Annotated[str, Field(pattern=NAME_PATTERN)]


class DeploymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: Literal["start", "finish"]
    env: Name
    component: Name
    version: Annotated[str, Field(pattern=VERSION_PATTERN)]
    status: Literal["success", "failure", "rolled_back"] | None = Field(
        None, description="Required with event=finish, refused with event=start"
    )
    commit_time: AwareDatetime | None = Field(None, description="When the deployed commit was made")
    at: AwareDatetime | None = Field(
        None, description="When it happened; default: when the server receives it"
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _out(d: store.Deployment) -> dict[str, Any]:
    return {
        "id": f"{d.env}/{d.component}/{d.version}",
        "env": d.env,
        "component": d.component,
        "version": d.version,
        "status": d.status,
        "started_at": _iso(d.started_at),
        "finished_at": _iso(d.finished_at),
        "commit_time": _iso(d.commit_at),
        "duration_seconds": d.duration_seconds,
        "lead_time_seconds": d.lead_time_seconds,
    }


def router(
    engine: Engine,
    admin: Sequence[Depends],
    reader: Sequence[Depends],
    clock: Callable[[], datetime],
) -> APIRouter:
    """The routes, guarded by the app's own admin and reader dependencies."""
    metrics.install(engine)
    api = APIRouter()

    @api.post("/api/deployments", dependencies=list(admin))
    def report(body: DeploymentIn, response: Response) -> dict[str, Any]:
        if (body.event == "finish") != (body.status is not None):
            raise HTTPException(422, "status is required to finish a deployment and refused to start one")
        at = body.at or clock()
        try:
            if body.status is None:
                found, changed = store.start(
                    engine, body.env, body.component, body.version, at, body.commit_time
                )
            else:
                found, changed = store.finish(
                    engine, body.env, body.component, body.version, body.status, at, body.commit_time
                )
        except store.Invalid as exc:
            raise HTTPException(422, str(exc)) from None
        except store.Conflict as exc:
            raise HTTPException(409, str(exc)) from None
        response.status_code = 201 if changed else 200
        return {**_out(found), "recorded": changed}

    @api.get("/api/deployments", dependencies=list(reader))
    def list_deployments(
        env: Annotated[str | None, Query(max_length=100)] = None,
        component: Annotated[str | None, Query(max_length=100)] = None,
        since: Annotated[AwareDatetime | None, Query(description="ISO-8601 with offset")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        found = store.listing(engine, env=env, component=component, since=since, limit=limit)
        return [_out(d) for d in found]

    @api.get("/api/deployments/dora", dependencies=list(reader))
    def dora_numbers(
        env: Annotated[str | None, Query(max_length=100)] = None,
        component: Annotated[str | None, Query(max_length=100)] = None,
        days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 30,
    ) -> dict[str, Any]:
        end = clock()
        start = end - timedelta(days=days)
        found = store.listing(engine, env=env, component=component, since=start)
        return {
            "env": env,
            "component": component,
            "days": days,
            "from": _iso(start),
            "to": _iso(end),
            **dora.summary(found, start, end),
        }

    return api
