"""From one probe result to stored state, state changes, incidents and queued notifications.

All of it happens in the caller's transaction (`apply_result`) so a crash leaves either
everything or nothing: never an incident without its notification row, never a result
without the state it implies. The retry logic itself is the pure
`lightkeeper.server.probes.state.advance`; this module only persists its verdicts.

Rules:
* `probe_state.state` is what the status page shows: up / down / unknown, or
  "maintenance" while a window covers the probe. The underlying up/down is still
  tracked then (state changes keep flowing, uptime math excludes the window), but no
  incident opens or resolves and nothing is notified.
* A state change row is written when the recorded state differs from the last one:
  up / down from `advance`, and "no_data" for results taken while the server itself
  was offline (those count neither as failures nor as successes).
* One open incident per probe (a unique partial index backs this); it opens when the
  probe is down and none is open, and resolves on the first "up". The outbox rows are
  keyed `incident:{id}:opened` / `incident:{id}:resolved`, unique, so a retried or
  replayed transaction can never queue a second notification for one change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import Connection, Engine, bindparam, select, update

from lightkeeper.server.engine.notify.message import Alert, Event, Severity
from lightkeeper.server.engine.sql import insert_ignore, lock_rows
from lightkeeper.server.probes.result import ProbeResult
from lightkeeper.server.probes.state import ProbeState, State, advance
from lightkeeper.server.store.tables import incidents, outbox, probe_state, results, state_changes
from lightkeeper.spec.probes import Probe

StoredState = Literal["unknown", "up", "down", "maintenance"]
_SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low")


@dataclass(frozen=True, slots=True)
class Outcome:
    state: StoredState
    state_change: str | None = None
    opened_incident: int | None = None
    resolved_incident: int | None = None


@dataclass(frozen=True, slots=True)
class Applied:
    """One result to apply; `lease_owner` releases that replica's lease on the probe."""

    probe: Probe
    result: ProbeResult
    in_maintenance: bool = False
    lease_owner: str | None = None


def severity_of(probe: Probe) -> Severity:
    """A `severity:<level>` tag picks the route; probe outages are critical otherwise."""
    for tag in probe.tags:
        key, _, value = tag.partition(":")
        if key == "severity" and value in _SEVERITIES:
            return value
    return "critical"


def apply_result(
    conn: Connection,
    probe: Probe,
    result: ProbeResult,
    *,
    in_maintenance: bool = False,
    service: str = "lightkeeper",
    lease_owner: str | None = None,
) -> Outcome:
    """Apply one result inside the caller's transaction (see the module rules)."""
    insert_ignore(conn, probe_state, [{"probe": probe.name}], ["probe"])
    row = conn.execute(lock_rows(conn, select(probe_state).where(probe_state.c.probe == probe.name))).one()
    last_change = _last_change(conn, probe.name)
    prior = _underlying(row.state, last_change)
    new = advance(ProbeState(prior, row.consecutive_failures), result, probe.retries)

    conn.execute(
        results.insert().values(
            probe=probe.name,
            checked_at=result.checked_at,
            ok=result.ok,
            status=result.status,
            latency_ms=result.latency_ms,
            error=result.error,
        )
    )
    recorded: str | None = (
        "no_data" if result.status == "no_data" else (new.state if new.state != "unknown" else None)
    )
    change = recorded if recorded is not None and recorded != last_change else None
    if change is not None:
        conn.execute(state_changes.insert().values(probe=probe.name, at=result.checked_at, state=change))

    shown: StoredState = "maintenance" if in_maintenance else new.state
    values: dict[str, object] = {
        "state": shown,
        "consecutive_failures": new.consecutive_failures,
        "last_checked_at": result.checked_at,
        "last_latency_ms": result.latency_ms,
        "last_error": result.error,
        "last_tls_expiry_seconds": result.tls_expiry_seconds,
    }
    conn.execute(update(probe_state).where(probe_state.c.probe == probe.name).values(**values))
    if lease_owner is not None:
        conn.execute(
            update(probe_state)
            .where(probe_state.c.probe == probe.name, probe_state.c.lease_owner == lease_owner)
            .values(lease_owner=None, lease_expires_at=None)
        )
    if in_maintenance or result.status == "no_data":
        return Outcome(shown, change)
    opened = resolved = None
    open_row = conn.execute(
        select(incidents.c.id, incidents.c.started_at, incidents.c.cause).where(
            incidents.c.probe == probe.name, incidents.c.resolved_at.is_(None)
        )
    ).first()
    if new.state == "down" and open_row is None:
        cause = result.error or "probe failed"
        opened = conn.execute(
            incidents.insert()
            .values(probe=probe.name, started_at=result.checked_at, cause=cause)
            .returning(incidents.c.id)
        ).scalar_one()
        _enqueue(conn, _alert("opened", opened, probe, service, cause, result.checked_at, None))
    elif new.state == "up" and open_row is not None:
        resolved = int(open_row.id)
        conn.execute(
            update(incidents).where(incidents.c.id == resolved).values(resolved_at=result.checked_at)
        )
        alert = _alert(
            "resolved", resolved, probe, service, open_row.cause or "", open_row.started_at, result.checked_at
        )
        _enqueue(conn, alert)
    return Outcome(shown, change, opened, resolved)


def apply_results(engine: Engine, batch: Sequence[Applied], *, service: str = "lightkeeper") -> list[Outcome]:
    """Apply a batch in ONE transaction: one commit (one fsync) per batch, all or nothing.

    Most results are "up" for a probe without an open incident: the steady state, and every
    probe's first result after a start. Those are decided with one read and written with a
    few statements for the whole batch (`_plain_ups`, `_write_plain_ups`) instead of the
    eight `apply_result` runs per result (25x less CPU, measured in bench/server_probes.py);
    everything else goes through `apply_result`. Both write the same rows.
    """
    with engine.begin() as conn:
        plain = _plain_ups(conn, batch)
        outcomes = [
            Outcome("up", plain[index])
            if index in plain
            else apply_result(
                conn,
                item.probe,
                item.result,
                in_maintenance=item.in_maintenance,
                service=service,
                lease_owner=item.lease_owner,
            )
            for index, item in enumerate(batch)
        ]
        _write_plain_ups(conn, [(batch[index], change) for index, change in sorted(plain.items())])
        return outcomes


def _plain_ups(conn: Connection, batch: Sequence[Applied]) -> dict[int, str | None]:
    """Results that make a probe up with nothing else to do, by index -> the state change to record.

    An up result outside maintenance makes the probe up with no failures counted, whatever
    came before; with no open incident there is nothing to resolve or notify, so only the
    result, maybe an "up" state change, and the state row are written. A probe twice in one
    batch always takes the full path (its second result depends on the first).
    """
    seen: dict[str, int] = {}
    for index, item in enumerate(batch):
        seen[item.probe.name] = -1 if item.probe.name in seen else index
    candidates = {
        name: index
        for name, index in seen.items()
        if index >= 0
        and not batch[index].in_maintenance
        and batch[index].result.ok
        and batch[index].result.status == "up"
    }
    if not candidates:
        return {}
    ps, sc, inc = probe_state.c, state_changes.c, incidents.c
    last_change = (
        select(sc.state)
        .where(sc.probe == ps.probe)
        .order_by(sc.at.desc(), sc.id.desc())
        .limit(1)
        .correlate(probe_state)
        .scalar_subquery()
    )
    open_incident = (
        select(inc.id).where(inc.probe == ps.probe, inc.resolved_at.is_(None)).correlate(probe_state)
    )
    query = select(ps.probe, last_change).where(ps.probe.in_(list(candidates)), ~open_incident.exists())
    rows = conn.execute(lock_rows(conn, query, of=probe_state)).all()
    return {candidates[name]: (None if last == "up" else "up") for name, last in rows}


def _write_plain_ups(conn: Connection, items: Sequence[tuple[Applied, str | None]]) -> None:
    if not items:
        return
    conn.execute(
        results.insert(),
        [
            {
                "probe": i.probe.name,
                "checked_at": i.result.checked_at,
                "ok": True,
                "status": "up",
                "latency_ms": i.result.latency_ms,
                "error": None,
            }
            for i, _ in items
        ],
    )
    changes = [{"probe": i.probe.name, "at": i.result.checked_at, "state": c} for i, c in items if c]
    if changes:
        conn.execute(state_changes.insert(), changes)
    conn.execute(
        update(probe_state)
        .where(probe_state.c.probe == bindparam("b_probe"))
        .values(
            state="up",
            consecutive_failures=0,
            last_checked_at=bindparam("b_at"),
            last_latency_ms=bindparam("b_latency"),
            last_error=None,
            last_tls_expiry_seconds=bindparam("b_expiry"),
        ),
        [
            {
                "b_probe": i.probe.name,
                "b_at": i.result.checked_at,
                "b_latency": i.result.latency_ms,
                "b_expiry": i.result.tls_expiry_seconds,
            }
            for i, _ in items
        ],
    )
    owned = [{"b_probe": i.probe.name, "b_owner": i.lease_owner} for i, _ in items if i.lease_owner]
    if owned:
        conn.execute(
            update(probe_state)
            .where(
                probe_state.c.probe == bindparam("b_probe"), probe_state.c.lease_owner == bindparam("b_owner")
            )
            .values(lease_owner=None, lease_expires_at=None),
            owned,
        )


def enqueue_alert(conn: Connection, alert: Alert, dedupe_key: str, now: datetime | None = None) -> bool:
    """Queue `alert` unless `dedupe_key` was queued before; True when this call queued it."""
    at = now or datetime.now(UTC)
    row = {
        "dedupe_key": dedupe_key,
        "kind": "incident",
        "payload": alert.to_payload(),
        "created_at": at,
        "next_attempt_at": at,
    }
    return insert_ignore(conn, outbox, [row], ["dedupe_key"]) == 1


def _enqueue(conn: Connection, alert: Alert) -> None:
    # due from the moment of the change itself (the result's time), not from when it was applied
    at = alert.resolved_at or alert.started_at
    enqueue_alert(conn, alert, f"incident:{alert.incident_id}:{alert.event}", at)


def _alert(
    event: Event,
    incident_id: int,
    probe: Probe,
    service: str,
    cause: str,
    started_at: datetime,
    resolved_at: datetime | None,
) -> Alert:
    return Alert(
        event=event,
        incident_id=int(incident_id),
        probe=probe.name,
        component=probe.component or probe.name,
        service=service,
        severity=severity_of(probe),
        cause=cause,
        started_at=started_at,
        resolved_at=resolved_at,
    )


def _last_change(conn: Connection, probe: str) -> str | None:
    return conn.execute(
        select(state_changes.c.state)
        .where(state_changes.c.probe == probe)
        .order_by(state_changes.c.at.desc(), state_changes.c.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def _underlying(stored: str, last_change: str | None) -> State:
    """The up/down/unknown the retry count continues from; "maintenance" hides it, the history keeps it."""
    if stored in ("up", "down"):
        return stored  # type: ignore[return-value]
    if stored == "maintenance" and last_change in ("up", "down"):
        return last_change  # type: ignore[return-value]
    return "unknown"
