"""Histories written straight into the store, so tests know every expected number."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import TypeAdapter
from sqlalchemy import Engine, insert, update

from lightkeeper.server.http import writes
from lightkeeper.server.store import sketch
from lightkeeper.server.store import tables as t
from lightkeeper.spec.probes import Probe

PROBE: TypeAdapter[Probe] = TypeAdapter(Probe)


def probe(engine: Engine, name: str, *, component: str = "", kind: str = "http", **extra: object) -> Probe:
    body: dict[str, object] = {"name": name, "type": kind, **extra}
    if component:
        body["component"] = component
    if kind == "http":
        body.setdefault("target", f"http://127.0.0.1:9/{name}")
    if kind == "heartbeat" and "cron" not in body:
        body.setdefault("period_seconds", 3600)
    made = PROBE.validate_python(body)
    writes.save_probe(engine, made, "spec", create=True)
    return made


def state(
    engine: Engine,
    name: str,
    value: str,
    *,
    at: datetime,
    latency_ms: float | None = None,
    error: str | None = None,
    tls_expiry: float | None = None,
) -> None:
    values = {
        "state": value,
        "last_checked_at": at,
        "last_latency_ms": latency_ms,
        "last_error": error,
        "last_tls_expiry_seconds": tls_expiry,
    }
    with engine.begin() as conn:
        changed = conn.execute(update(t.probe_state).where(t.probe_state.c.probe == name).values(**values))
        if changed.rowcount == 0:
            conn.execute(insert(t.probe_state).values(probe=name, **values))


def rollup(
    engine: Engine,
    name: str,
    resolution: str,
    start: datetime,
    *,
    up: float = 0,
    down: float = 0,
    no_data: float = 0,
    maintenance: float = 0,
    checks: int = 0,
    failures: int = 0,
    latencies: list[float] | None = None,
) -> None:
    built = sketch.build(latencies or [])
    with engine.begin() as conn:
        conn.execute(
            insert(t.rollups).values(
                probe=name,
                resolution=resolution,
                bucket_start=start,
                checks=checks,
                failures=failures,
                latency_sum_ms=sum(latencies or []),
                sketch=sketch.encode(built) if built else None,
                up_seconds=up,
                down_seconds=down,
                no_data_seconds=no_data,
                maintenance_seconds=maintenance,
            )
        )


def full_days(engine: Engine, name: str, first: datetime, days: int, *, down_per_day: float = 0) -> None:
    for offset in range(days):
        rollup(
            engine,
            name,
            "day",
            first + timedelta(days=offset),
            up=86400 - down_per_day,
            down=down_per_day,
            checks=1440,
            failures=0,
        )


def incident(
    engine: Engine,
    name: str,
    started: datetime,
    resolved: datetime | None,
    cause: str = "expected status 200, got 503",
) -> int:
    with engine.begin() as conn:
        result = conn.execute(
            insert(t.incidents)
            .values(probe=name, started_at=started, resolved_at=resolved, cause=cause)
            .returning(t.incidents.c.id)
        )
        return int(result.scalar_one())


def change(engine: Engine, name: str, at: datetime, value: str) -> None:
    with engine.begin() as conn:
        conn.execute(insert(t.state_changes).values(probe=name, at=at, state=value))
