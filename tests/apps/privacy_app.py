"""The example SaaS app (examples.saas_app) as the privacy contract test drives it:
its own routes, plus the traced routes under /t and a few routes under /p that push
secrets into every place a careless service would leak them (log fields, exception
messages, span attributes, SQL parameters, Celery arguments, Redis values, outbound
URLs and headers).

    uvicorn tests.apps.privacy_app:app      # env: SAAS_DATABASE_URL, TRACED_*, LK_CELERY_*, ...

The secrets arrive in the request (JSON body and headers); nothing here knows them.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import structlog
from examples.saas_app.main import create_app
from fastapi import APIRouter, Request
from opentelemetry import trace
from sqlalchemy import text

import lightkeeper
from tests.apps import traced_routes

log = structlog.get_logger("privacy_app")
router = APIRouter(prefix="/p")

# E-mail masking is opt-in; the contract covers it switched on. The example app's own
# instrument() call reads it from the environment, like any deployment would.
os.environ.setdefault("LIGHTKEEPER_REDACT_EMAILS", "true")


@router.post("/notes")
async def create_note(request: Request) -> dict[str, Any]:
    """Everything a note-taking endpoint might do with a payload that holds secrets."""
    data = await request.json()
    span = trace.get_current_span()
    span.set_attribute("app.access_key", data["aws_key"])
    span.set_attribute("app.note", f"token={data['api_key']}")
    span.set_attribute("app.owner", f"note owned by {data['email']}")
    log.info(
        "note_received",
        api_key=data["api_key"],
        password=data["password"],
        card_number=data["card"],
        owner_note=f"shared with {data['email']}",
        dsn=data["dsn"],
    )
    engine, _ = traced_routes._engines()
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS p_notes (title text, api_key text, password text)"))
        conn.execute(
            text("INSERT INTO p_notes VALUES (:title, :api_key, :password)"),
            {"title": data["title"], "api_key": data["api_key"], "password": data["password"]},
        )
    traced_routes._redis().set("p:last-key", data["api_key"], ex=60)
    celery = traced_routes._celery()
    celery.send_task("lk.store_secret", args=["kept", data["api_key"], data["password"]])
    celery.send_task("lk.store_secret", args=["fail", data["api_key"], data["password"]])
    async with httpx.AsyncClient(timeout=5) as client:
        await client.get(
            f"{os.environ['TRACED_DOWNSTREAM']}/items/1",
            params={"api_key": data["api_key"]},
            headers={"Authorization": f"Bearer {data['jwt']}"},
        )
    raise RuntimeError(
        f"sync failed for {data['email']}: connect {data['dsn']} with password={data['password']}, "
        f"Authorization: Bearer {data['jwt']}"
    )


@router.post("/handled")
async def handled(request: Request) -> dict[str, Any]:
    data = await request.json()
    try:
        raise PermissionError(f"billing refused key {data['stripe']}")
    except PermissionError as exc:
        lightkeeper.capture_exception(exc, api_key=data["api_key"], dsn=data["dsn"], customer=data["email"])
    return {"handled": True}


app = create_app()
app.include_router(traced_routes.router, prefix="/t")
app.include_router(router)
lightkeeper.instrument_httpx()
if os.environ.get("TRACED_CELERY") == "1":
    traced_routes._celery()
