"""The postgres probe: a fresh connection answers `SELECT 1`.

A fresh connection (not a pool) on purpose: the question is whether a new client can
get in, which is what fails when `max_connections` is reached or auth is broken.
"""

from __future__ import annotations

import time

import psycopg
from psycopg.conninfo import make_conninfo

from lightkeeper.server.probes import secrets
from lightkeeper.server.probes.result import Observation, ProbeFailure
from lightkeeper.spec.probes import PostgresProbe


async def check(probe: PostgresProbe, found_secrets: list[str]) -> Observation:
    password = secrets.password(probe.password_env, probe.password_file)
    if password:
        found_secrets.append(password)
    started = time.perf_counter()
    try:
        conn = await psycopg.AsyncConnection.connect(
            make_conninfo(probe.target, password=password),
            connect_timeout=max(2, int(probe.timeout_seconds) + 1),
        )
    except psycopg.OperationalError as exc:
        raise ProbeFailure(f"cannot connect: {_first_line(exc)}") from None
    try:
        async with conn.cursor() as cursor:
            await cursor.execute("SELECT 1")
            row = await cursor.fetchone()
    except psycopg.Error as exc:
        raise ProbeFailure(f"SELECT 1 failed: {_first_line(exc)}") from None
    finally:
        await conn.close()
    latency_ms = (time.perf_counter() - started) * 1000
    if row != (1,):
        raise ProbeFailure(f"SELECT 1 returned {row!r}", latency_ms=latency_ms)
    return Observation(latency_ms=latency_ms)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines[:2]) or exc.__class__.__name__
