"""Scanners hitting random paths must not mint series: cardinality stays bounded."""

from __future__ import annotations

import asyncio
import random
import string

import httpx
from fastapi import FastAPI

import lightkeeper
from lightkeeper.sdk import multiprocess
from lightkeeper.testing import capture_logs


def series_count() -> int:
    return sum(len(m.samples) for m in multiprocess.exposition_registry().collect())


def random_path(rng: random.Random) -> str:
    parts = [
        "".join(rng.choices(string.ascii_letters + string.digits, k=rng.randint(1, 12)))
        for _ in range(rng.randint(1, 5))
    ]
    return "/" + "/".join(parts)


def test_ten_thousand_random_unknown_paths_add_a_constant_number_of_series() -> None:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    lightkeeper.instrument(app, service="scan", environment="test", version="1")
    rng = random.Random(7)
    methods = ["GET", "POST", "PUT", "DELETE", "PROPFIND", "FOO"]

    async def scan(n: int) -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://scanner") as client:
            for i in range(n):
                method = methods[i % len(methods)]
                response = await client.request(method, random_path(rng))
                assert response.status_code in (404, 405)
                if i % 100 == 0:  # matched routes with random ids share one template too
                    assert (await client.get(f"/items/{rng.random()}")).status_code == 200

    with capture_logs():
        asyncio.run(scan(200))  # warm: every (method, status) combination seen once
        warm = series_count()
        asyncio.run(scan(10_000))
        after = series_count()
    assert after == warm, f"{after - warm} new series from random paths"
