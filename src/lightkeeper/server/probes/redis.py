"""The redis probe: a fresh connection answers `PING`."""

from __future__ import annotations

import time

from redis import asyncio as aioredis
from redis.exceptions import RedisError

from lightkeeper.server.probes import secrets
from lightkeeper.server.probes.result import Observation, ProbeFailure
from lightkeeper.spec.probes import RedisProbe


async def check(probe: RedisProbe, found_secrets: list[str]) -> Observation:
    password = secrets.password(probe.password_env, probe.password_file)
    if password:
        found_secrets.append(password)
    client = aioredis.Redis.from_url(
        probe.url(),
        password=password,
        socket_connect_timeout=probe.timeout_seconds,
        socket_timeout=probe.timeout_seconds,
        retry_on_timeout=False,
    )
    started = time.perf_counter()
    try:
        answer = await client.ping()
    except RedisError as exc:
        raise ProbeFailure(f"PING failed: {exc}") from None
    finally:
        await client.aclose()
    latency_ms = (time.perf_counter() - started) * 1000
    if answer is not True:
        raise ProbeFailure(f"PING answered {answer!r}", latency_ms=latency_ms)
    return Observation(latency_ms=latency_ms)
