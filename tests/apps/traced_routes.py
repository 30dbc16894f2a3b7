"""Routes that touch every traced library; served by tests.apps.traced_app and, under
/t, by tests.apps.privacy_app (the example SaaS app with these routes added).

Configured by environment, so one module covers healthy and broken dependencies:

| variable           | what                                                        |
|--------------------|-------------------------------------------------------------|
| TRACED_PG_URL      | PostgreSQL URL without driver (sync psycopg + async asyncpg) |
| TRACED_REDIS_URL   | Redis URL (tests use db 8)                                   |
| TRACED_DOWNSTREAM  | base URL another service answers on (outbound httpx calls)   |
| TRACED_CELERY      | "1": publish to tests.integration.celery_app (LK_CELERY_*)   |
| TRACED_DEAD_BROKER | a broker URL nothing answers on (the broker-down path)       |
| TRACED_SERVICE     | service name (default "traced")                              |

Lightkeeper's own settings come from `LIGHTKEEPER_*` / `OTEL_*` / `SENTRY_DSN`.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import structlog
from fastapi import APIRouter, HTTPException, Request
from opentelemetry import trace
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

import lightkeeper

log = structlog.get_logger("traced_app")
router = APIRouter()
_state: dict[str, Any] = {}


def _engines() -> tuple[Any, Any]:
    if "engine" not in _state:
        url = os.environ["TRACED_PG_URL"]
        _state["engine"] = create_engine(
            url.replace("postgresql://", "postgresql+psycopg://", 1),
            pool_pre_ping=False,
            connect_args={"connect_timeout": 3},
        )
        _state["async_engine"] = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1))
        lightkeeper.instrument_sqlalchemy(_state["engine"])
        lightkeeper.instrument_sqlalchemy(_state["async_engine"])
    return _state["engine"], _state["async_engine"]


def _redis() -> Any:
    if "redis" not in _state:
        import redis

        client = redis.Redis.from_url(os.environ["TRACED_REDIS_URL"], socket_timeout=3)
        lightkeeper.instrument_redis(client)
        _state["redis"] = client
    return _state["redis"]


def _celery() -> Any:
    from tests.integration import celery_app

    return celery_app.app


def _dead_broker() -> Any:
    if "dead" not in _state:
        from celery import Celery

        app = Celery("traced-dead-broker", broker=os.environ["TRACED_DEAD_BROKER"])
        app.conf.update(
            broker_connection_retry=False,
            broker_connection_max_retries=0,
            task_publish_retry=False,
            broker_transport_options={"socket_connect_timeout": 1, "socket_timeout": 1},
        )
        lightkeeper.instrument_celery(app, configure_logging=False, sample_interval=None)
        _state["dead"] = app
    return _state["dead"]


@router.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, Any]:
    log.info("item_read", item_id=item_id)
    return {"id": item_id, "pid": os.getpid()}


@router.get("/db/{item_id}")
def db_item(item_id: int) -> dict[str, Any]:
    engine, _ = _engines()
    with engine.connect() as conn:
        found = conn.execute(text("SELECT CAST(:id AS integer) AS id"), {"id": item_id}).scalar_one()
    log.info("db_read", item_id=found)
    return {"id": found}


@router.get("/db-async/{item_id}")
async def db_item_async(item_id: int) -> dict[str, Any]:
    _, engine = _engines()
    async with engine.connect() as conn:
        found = (await conn.execute(text("SELECT CAST(:id AS integer) AS id"), {"id": item_id})).scalar_one()
    return {"id": found}


@router.get("/db-dies")
def db_dies() -> dict[str, Any]:
    """The database goes away in the middle of the request (its backend is terminated)."""
    engine, _ = _engines()
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        conn.execute(text("SELECT 1"))  # the connection is gone: OperationalError
    return {"never": True}


@router.get("/redis/{key}")
def redis_roundtrip(key: str) -> dict[str, Any]:
    client = _redis()
    client.set(f"traced:{key}", "value", ex=60)
    return {"value": client.get(f"traced:{key}").decode()}


@router.get("/outbound")
async def outbound(request: Request) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"{os.environ['TRACED_DOWNSTREAM']}/items/1")
    return {"status": response.status_code, "downstream_request_id": response.headers.get("x-request-id")}


@router.get("/chain/{item_id}")
def chain(item_id: int) -> dict[str, Any]:
    """HTTP -> SQL -> Celery task (which runs SQL itself, on the worker)."""
    engine, _ = _engines()
    with engine.connect() as conn:
        conn.execute(text("SELECT CAST(:id AS integer)"), {"id": item_id})
    result = _celery().send_task("lk.query", args=[item_id])
    return {"task_id": result.id}


@router.get("/publish-dead")
def publish_dead() -> dict[str, Any]:
    try:
        _dead_broker().send_task("lk.add", args=[1, 2])
    except Exception as exc:
        lightkeeper.capture_exception(exc, operation="publish")
        raise HTTPException(503, "queue unavailable") from None
    return {"published": True}


@router.get("/fail")
async def fail() -> None:
    raise RuntimeError("payment provider refused the charge")


@router.get("/fail/{kind}")
async def fail_kind(kind: str) -> None:
    if kind == "a":
        raise ValueError("kind a broke")
    raise KeyError("kind b broke")


@router.get("/handled")
async def handled() -> dict[str, Any]:
    try:
        raise ConnectionError("report store unreachable")
    except ConnectionError as exc:
        lightkeeper.capture_exception(exc, report_id=17)
    return {"handled": True}


@router.get("/annotate")
async def annotate() -> dict[str, Any]:
    """Application code adding its own attribute to the request's span."""
    trace.get_current_span().set_attribute("app.tenant", "acme")
    return {"ok": True}
