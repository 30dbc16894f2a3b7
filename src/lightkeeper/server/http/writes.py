"""The few writes the HTTP side makes: probes and maintenance from the admin API, pings.

Probe results, state changes and incidents belong to the engine; here only what a
person or a cron job tells the server is stored. Every write is one transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import Engine, delete, insert, select, update

from lightkeeper.server.store import tables as t
from lightkeeper.spec.probes import Probe

Source = Literal["spec", "api"]


class Conflict(Exception):
    """The write contradicts what is stored; the message says what to do instead."""


class NotFound(Exception):
    pass


def _now() -> datetime:
    return datetime.now(UTC)


def save_probe(engine: Engine, probe: Probe, source: Source, *, create: bool) -> None:
    """Create (`create=True`) or replace a probe; a probe declared in the spec is the spec's."""
    # only what was given: defaults re-applied on load, and a dumped default (a heartbeat's
    # `timezone`) must not read back as an explicit choice the model then refuses
    config = probe.model_dump(mode="json", by_alias=True, exclude_unset=True)
    now = _now()
    p = t.probes.c
    with engine.begin() as conn:
        row = conn.execute(select(p.source, p.deleted_at, p.config).where(p.name == probe.name)).first()
        alive = row is not None and row.deleted_at is None
        if source == "api" and alive and row is not None and row.source == "spec":
            raise Conflict(f"probe {probe.name!r} is declared in the spec; change it in lightkeeper.yaml")
        if create and alive and source == "api":
            raise Conflict(f"probe {probe.name!r} exists; PUT /api/probes/{probe.name} replaces it")
        if not create and not alive:
            raise NotFound(f"no probe named {probe.name!r}")
        if row is None:
            conn.execute(
                insert(t.probes).values(
                    name=probe.name, source=source, config=config, created_at=now, updated_at=now
                )
            )
            return
        if alive and row.source == source and row.config == config:
            return  # unchanged (a restart re-reading the spec): keep its schedule
        conn.execute(
            update(t.probes)
            .where(p.name == probe.name)
            .values(source=source, config=config, updated_at=now, deleted_at=None)
        )
        # the scheduler plans probes without a next run within one interval, with jitter
        conn.execute(
            update(t.probe_state).where(t.probe_state.c.probe == probe.name).values(next_run_at=None)
        )


def delete_probe(engine: Engine, name: str) -> None:
    """Soft delete: the probe stops running, its history stays for the SLA report."""
    p = t.probes.c
    with engine.begin() as conn:
        row = conn.execute(select(p.source).where(p.name == name, p.deleted_at.is_(None))).first()
        if row is None:
            raise NotFound(f"no probe named {name!r}")
        if row.source == "spec":
            raise Conflict(f"probe {name!r} is declared in the spec; remove it from lightkeeper.yaml")
        conn.execute(update(t.probes).where(p.name == name).values(deleted_at=_now()))


def retire_missing_spec_probes(engine: Engine, keep: set[str]) -> list[str]:
    """Spec probes no longer in the spec are deleted (soft); returns their names."""
    p = t.probes.c
    with engine.begin() as conn:
        gone = [
            str(r.name)
            for r in conn.execute(select(p.name).where(p.source == "spec", p.deleted_at.is_(None)))
            if r.name not in keep
        ]
        if gone:
            conn.execute(update(t.probes).where(p.name.in_(gone)).values(deleted_at=_now()))
    return gone


def add_maintenance(
    engine: Engine,
    *,
    title: str,
    probes: list[str],
    starts_at: datetime,
    ends_at: datetime | None,
    cron: str | None,
    duration_seconds: int | None,
    timezone: str,
) -> int:
    with engine.begin() as conn:
        result = conn.execute(
            insert(t.maintenance)
            .values(
                title=title,
                probes=probes,
                starts_at=starts_at,
                ends_at=ends_at,
                cron=cron,
                duration_seconds=duration_seconds,
                timezone=timezone,
            )
            .returning(t.maintenance.c.id)
        )
        return int(result.scalar_one())


def delete_maintenance(engine: Engine, window_id: int) -> None:
    with engine.begin() as conn:
        if conn.execute(delete(t.maintenance).where(t.maintenance.c.id == window_id)).rowcount == 0:
            raise NotFound(f"no maintenance window with id {window_id}")


def record_ping(engine: Engine, probe: str, kind: str, exit_code: int | None) -> datetime:
    at = _now()
    with engine.begin() as conn:
        conn.execute(insert(t.heartbeat_pings).values(probe=probe, at=at, kind=kind, exit_code=exit_code))
    return at
