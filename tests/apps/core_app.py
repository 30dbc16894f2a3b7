"""A small app exercising every shape of route the middleware must label.

Served by a real uvicorn in tests/integration; configured through environment
variables so one module covers healthy, broken and hung dependencies.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time

import structlog
from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.responses import StreamingResponse
from starlette.requests import Request as StarletteRequest
from starlette.responses import PlainTextResponse

import lightkeeper
from lightkeeper import health

app = FastAPI()
BACKGROUND_DONE = threading.Event()


@app.get("/items/{item_id}")
async def get_item(item_id: int) -> dict[str, int]:
    structlog.get_logger().info("item_viewed", item_id=item_id)
    return {"id": item_id}


@app.post("/items")
async def create_item(request: Request) -> dict[str, int]:
    body = await request.body()
    return {"size": len(body)}


@app.get("/fail")
async def fail() -> None:
    raise RuntimeError("database said no")


@app.get("/stream")
async def stream() -> StreamingResponse:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(5):
            yield b"x" * 100
            await asyncio.sleep(0.05)

    return StreamingResponse(chunks(), media_type="text/plain")


@app.get("/background")
async def background(tasks: BackgroundTasks) -> dict[str, str]:
    def slow_task() -> None:
        time.sleep(0.5)
        structlog.get_logger().info("background_finished")
        BACKGROUND_DONE.set()

    tasks.add_task(slow_task)
    return {"queued": "yes"}


@app.get("/sync/{n}")
def sync_endpoint(n: int) -> dict[str, int]:
    lightkeeper.bind(job=f"sync-{n}")  # bound in a pool thread: must reach the access line
    structlog.get_logger().info("sync_work", n=n)
    logging.getLogger("app.sync").warning("stdlib line from a thread")
    return {"n": n}


@app.post("/login")
async def login(request: Request) -> dict[str, str]:
    data = await request.json()
    structlog.get_logger().info(
        "login_attempt",
        user=data.get("user"),
        password=data.get("password"),
        headers=dict(request.headers),
        query=str(request.url.query),
    )
    return {"ok": "yes"}


async def plain(request: StarletteRequest) -> PlainTextResponse:
    """A Starlette route on a FastAPI app: the router records no scope["route"]."""
    lightkeeper.bind(plain_n=request.path_params["n"])
    return PlainTextResponse("plain")


app.add_route("/plain/{n}", plain)

sub = FastAPI()


@sub.get("/things/{thing_id}")
async def thing(thing_id: str) -> dict[str, str]:
    return {"thing": thing_id}


org_api = FastAPI()


@org_api.get("/users/{user_id}")
async def org_user(user_id: str) -> dict[str, str]:
    return {"user": user_id}


app.mount("/v2", sub)
app.mount("/orgs/{org_id}/api", org_api)


def _checks() -> list[object]:
    checks: list[object] = []
    if url := os.environ.get("CORE_PG_URL"):
        checks.append(health.postgres(url))
    if url := os.environ.get("CORE_REDIS_URL"):
        checks.append(health.redis(url))
    return checks


lightkeeper.instrument(app, service="core", environment="test", version="9.9.9", checks=_checks())
