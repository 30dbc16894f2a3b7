"""A tiny instrumented FastAPI app that test_multiworker serves with several workers.

`app` wraps the instrumented FastAPI app in an outer ASGI layer that names the worker
answering (`X-Worker-Pid`), so the test can tell which worker served each request and
each `/metrics` scrape.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from fastapi import FastAPI

import lightkeeper

api = FastAPI()


@api.get("/items/{item_id}")
async def read_item(item_id: int) -> dict[str, int]:
    return {"item_id": item_id}


@api.post("/items", status_code=201)
async def create_item() -> dict[str, str]:
    return {"status": "created"}


@api.get("/slow")
async def slow() -> dict[str, str]:
    await asyncio.sleep(3.0)
    return {"status": "slow"}


lightkeeper.instrument(api, service="multiworker", environment="test", version="1.0.0")

_PID_HEADER = b"x-worker-pid"


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        await api(scope, receive, send)
        return
    pid = str(os.getpid()).encode()  # read per call: with --preload this module loads in the master

    async def send_with_pid(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), (_PID_HEADER, pid)]
        await send(message)

    await api(scope, receive, send_with_pid)
