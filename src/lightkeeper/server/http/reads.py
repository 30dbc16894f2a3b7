"""What the HTTP surfaces read from the store: probes with their state, incidents, maintenance.

Plain SQLAlchemy Core queries returning small frozen records, so the routes, the
status page and the SLA report share one reading of each table.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Engine, func, select

from lightkeeper.server.engine.maintenance import Window, window_from_row
from lightkeeper.server.probes.heartbeat import HeartbeatHistory, Ping
from lightkeeper.server.store import tables as t
from lightkeeper.spec.probes import Probe

PROBE: TypeAdapter[Probe] = TypeAdapter(Probe)
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProbeView:
    probe: Probe
    source: str
    state: str
    last_checked_at: datetime | None
    last_latency_ms: float | None
    last_error: str | None
    last_tls_expiry_seconds: float | None

    @property
    def name(self) -> str:
        return self.probe.name


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    probe: str
    started_at: datetime
    resolved_at: datetime | None
    cause: str | None

    def duration_seconds(self, now: datetime) -> float:
        return ((self.resolved_at or now) - self.started_at).total_seconds()


def probes(engine: Engine, name: str | None = None) -> list[ProbeView]:
    """Live (not deleted) probes, by name, with their current state ("unknown" before a first run)."""
    query = (
        select(t.probes, t.probe_state)
        .outerjoin(t.probe_state, t.probe_state.c.probe == t.probes.c.name)
        .where(t.probes.c.deleted_at.is_(None))
        .order_by(t.probes.c.name)
    )
    if name is not None:
        query = query.where(t.probes.c.name == name)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [view for view in map(_probe_view, rows) if view is not None]


def _probe_view(row: Any) -> ProbeView | None:
    try:
        probe = PROBE.validate_python(row["config"])
    except ValidationError as exc:
        # one unreadable row (written by an older version) must not take every page down
        log.error(
            "probe %s has an invalid stored config (%d errors); not shown", row["name"], exc.error_count()
        )
        return None
    return ProbeView(
        probe=probe,
        source=row["source"],
        state=row["state"] or "unknown",
        last_checked_at=row["last_checked_at"],
        last_latency_ms=row["last_latency_ms"],
        last_error=row["last_error"],
        last_tls_expiry_seconds=row["last_tls_expiry_seconds"],
    )


def incidents(
    engine: Engine,
    *,
    probe: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    open_only: bool = False,
    limit: int = 1000,
) -> list[Incident]:
    """Incidents overlapping [since, until), newest first."""
    i = t.incidents.c
    query = select(t.incidents).order_by(i.started_at.desc(), i.id.desc()).limit(limit)
    if probe is not None:
        query = query.where(i.probe == probe)
    if since is not None:
        query = query.where((i.resolved_at.is_(None)) | (i.resolved_at >= since))
    if until is not None:
        query = query.where(i.started_at < until)
    if open_only:
        query = query.where(i.resolved_at.is_(None))
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [Incident(r["id"], r["probe"], r["started_at"], r["resolved_at"], r["cause"]) for r in rows]


def open_incident_count(engine: Engine) -> int:
    with engine.connect() as conn:
        value = conn.execute(
            select(func.count()).select_from(t.incidents).where(t.incidents.c.resolved_at.is_(None))
        ).scalar_one()
    return int(value)


def outbox_depth(engine: Engine) -> int:
    with engine.connect() as conn:
        value = conn.execute(
            select(func.count()).select_from(t.outbox).where(t.outbox.c.sent_at.is_(None))
        ).scalar_one()
    return int(value)


def maintenance_windows(engine: Engine) -> list[Window]:
    with engine.connect() as conn:
        rows = conn.execute(select(t.maintenance).order_by(t.maintenance.c.starts_at)).mappings().all()
    return [window_from_row(r) for r in rows]


@dataclass(frozen=True, slots=True)
class DayTotals:
    """Seconds by state and check counts in one roll-up bucket."""

    bucket_start: datetime
    up: float
    down: float
    no_data: float
    maintenance: float
    checks: int
    failures: int
    latency_sum_ms: float
    sketch: bytes | None


def rollups(
    engine: Engine, probe_names: Sequence[str], resolution: str, start: datetime, end: datetime
) -> dict[str, list[DayTotals]]:
    """Roll-up rows of `resolution` with bucket_start in [start, end), per probe."""
    r = t.rollups.c
    query = (
        select(t.rollups)
        .where(r.resolution == resolution, r.bucket_start >= start, r.bucket_start < end)
        .order_by(r.probe, r.bucket_start)
    )
    if probe_names:
        query = query.where(r.probe.in_(list(probe_names)))
    out: dict[str, list[DayTotals]] = {}
    with engine.connect() as conn:
        for row in conn.execute(query).mappings():
            out.setdefault(row["probe"], []).append(
                DayTotals(
                    row["bucket_start"],
                    row["up_seconds"],
                    row["down_seconds"],
                    row["no_data_seconds"],
                    row["maintenance_seconds"],
                    row["checks"],
                    row["failures"],
                    row["latency_sum_ms"],
                    row["sketch"],
                )
            )
    return out


def heartbeat_history(engine: Engine, probe: str, limit: int = 200) -> HeartbeatHistory:
    """The latest pings of a heartbeat probe; watching began when the probe was created."""
    h = t.heartbeat_pings.c
    with engine.connect() as conn:
        created = conn.execute(
            select(t.probes.c.created_at).where(t.probes.c.name == probe)
        ).scalar_one_or_none()
        rows = conn.execute(
            select(h.at, h.kind, h.exit_code).where(h.probe == probe).order_by(h.at.desc()).limit(limit)
        ).all()
    pings = [Ping(r.at, r.kind, r.exit_code) for r in reversed(rows)]
    return HeartbeatHistory(pings, created or datetime.now(UTC))
