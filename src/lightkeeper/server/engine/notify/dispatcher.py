"""Drain the outbox: fan out, claim with a lease, send, then mark sent — or back off and retry.

Three row kinds live in the outbox:
* `incident` rows, written by `transitions` in the same transaction as the incident
  change (so a crash right after "incident opened" still has the row);
* `slo_alert` rows, one per burn-rate state change of an SLO tier (`server.slo.alerting`),
  fanned out exactly like incidents;
* `delivery` rows, one per receiver, created from an incident row in one transaction
  that also marks the incident row done. Each delivery is retried on its own, so a
  Slack outage never re-sends the email that already went out.

A delivery is claimed by setting `lease_owner`/`lease_expires_at` in a short transaction
(`FOR UPDATE SKIP LOCKED` on PostgreSQL), so two replicas never send one row at the same
time; `sent_at` is set only after the channel accepted. A replica that dies mid-send
leaves a lease that expires, and the row is sent by whoever comes next. A resolve or
reminder waits until the same receiver accepted the incident's "opened" message, so a
pager never sees a resolve for something it was not told about; an SLO resolve likewise
waits for every earlier change of the same SLO tier to that receiver.

Alertmanager forgets a firing alert that is not re-posted within its resolve_timeout,
so while an SLO tier fires, Alertmanager deliveries are re-posted every
`Router.resend_seconds` (same labels: Alertmanager keeps one alert, sends one page).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, or_, select, update

from lightkeeper.server.engine.notify.message import (
    SLO_ALERT_KIND,
    Alert,
    DeliveryError,
    Notification,
    SloAlert,
)
from lightkeeper.server.engine.notify.routing import Router
from lightkeeper.server.engine.sql import insert_ignore, lock_rows
from lightkeeper.server.engine.transitions import enqueue_alert
from lightkeeper.server.store.tables import incidents, outbox

log = logging.getLogger(__name__)
NEVER = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter: base·2^(n-1) capped, then a random half of it added."""

    base_seconds: float = 5.0
    cap_seconds: float = 600.0
    max_attempts: int | None = None  # None: keep trying at the cap

    def delay(self, attempts: int) -> float:
        ceiling = min(self.cap_seconds, self.base_seconds * 2.0 ** max(attempts - 1, 0))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: int
    dedupe_key: str
    receiver: str
    alert: Notification
    attempts: int


class Dispatcher:
    def __init__(
        self,
        engine: Engine,
        router: Router,
        *,
        owner: str | None = None,
        retry: RetryPolicy | None = None,
        lease_seconds: float = 60.0,
        batch: int = 50,
        poll_seconds: float = 1.0,
    ) -> None:
        self.engine = engine
        self.router = router
        self.owner = owner or uuid.uuid4().hex
        self.retry = retry or RetryPolicy()
        self.lease = timedelta(seconds=lease_seconds)
        self.batch = batch
        self.poll_seconds = poll_seconds

    async def run(self) -> None:
        """Dispatch until cancelled; a failing database is logged and retried, never fatal."""
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("outbox dispatch failed; retrying")
            await asyncio.sleep(self.poll_seconds)

    async def run_once(self, now: datetime | None = None) -> int:
        """One pass: reminders, fan-out, then send what is due; returns deliveries attempted."""
        at = now or datetime.now(UTC)
        await asyncio.to_thread(self._remind, at)
        await asyncio.to_thread(self._fan_out, at)
        claimed = await asyncio.to_thread(self._claim, at)
        started = time.monotonic()
        await asyncio.gather(*(self._deliver(item, at, started) for item in claimed))
        return len(claimed)

    def depth(self) -> int:
        """Rows not yet sent (both kinds): the outbox-depth metric."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).where(outbox.c.sent_at.is_(None))).scalar_one())

    # --- steps ---------------------------------------------------------------------
    def _remind(self, at: datetime) -> None:
        every = self.router.resend_seconds
        if not every:
            return
        with self.engine.begin() as conn:
            for row in conn.execute(
                select(incidents).where(
                    incidents.c.resolved_at.is_(None),
                    incidents.c.started_at <= at - timedelta(seconds=every),
                )
            ):
                n = int((at - row.started_at).total_seconds() // every)
                opened = _opened_payload(conn, row.id)
                if opened is None:
                    continue
                alert = Alert.from_payload({**opened, "event": "reminder"})
                enqueue_alert(conn, alert, f"incident:{row.id}:reminder:{n}", at)
            if "alertmanager" in self.router.channels:
                _keep_alive_slo_alerts(conn, every, at)

    def _fan_out(self, at: datetime) -> None:
        with self.engine.begin() as conn:
            query = (
                select(outbox.c.id, outbox.c.kind, outbox.c.dedupe_key, outbox.c.payload)
                .where(
                    outbox.c.kind.in_(("incident", SLO_ALERT_KIND)),
                    outbox.c.sent_at.is_(None),
                    outbox.c.next_attempt_at <= at,
                )
                .order_by(outbox.c.id)
                .limit(self.batch)
            )
            for row in conn.execute(lock_rows(conn, query, skip_locked=True)).all():
                slo = row.kind == SLO_ALERT_KIND
                alert: Notification = (
                    SloAlert.from_payload(row.payload) if slo else Alert.from_payload(row.payload)
                )
                receivers = self.router.receivers_for(alert.severity)
                deliveries = [
                    {
                        "dedupe_key": f"{row.dedupe_key}>{name}",
                        "kind": "delivery",
                        "payload": {"receiver": name, ("slo_alert" if slo else "alert"): row.payload},
                        "created_at": at,
                        "next_attempt_at": at,
                    }
                    for name in receivers
                ]
                insert_ignore(conn, outbox, deliveries, ["dedupe_key"])
                note = None if receivers else f"no receiver for severity {alert.severity}"
                conn.execute(update(outbox).where(outbox.c.id == row.id).values(sent_at=at, last_error=note))

    def _claim(self, at: datetime) -> list[_Claimed]:
        with self.engine.begin() as conn:
            query = (
                select(outbox.c.id, outbox.c.dedupe_key, outbox.c.payload, outbox.c.attempts)
                .where(
                    outbox.c.kind == "delivery",
                    outbox.c.sent_at.is_(None),
                    outbox.c.next_attempt_at <= at,
                    or_(outbox.c.lease_expires_at.is_(None), outbox.c.lease_expires_at < at),
                )
                .order_by(outbox.c.next_attempt_at, outbox.c.id)
                .limit(self.batch)
            )
            rows = conn.execute(lock_rows(conn, query, skip_locked=True)).all()
            claimed: list[_Claimed] = []
            for row in rows:
                item = _Claimed(
                    row.id,
                    row.dedupe_key,
                    row.payload["receiver"],
                    _notification(row.payload),
                    row.attempts,
                )
                if isinstance(item.alert, SloAlert):
                    if _earlier_slo_change_pending(conn, item):
                        wait = at + timedelta(seconds=self.retry.base_seconds)
                        conn.execute(update(outbox).where(outbox.c.id == row.id).values(next_attempt_at=wait))
                    else:
                        claimed.append(item)
                    continue
                if item.alert.event == "reminder" and _resolved(conn, item.alert.incident_id):
                    skipped = {"sent_at": at, "last_error": "skipped: the incident was resolved"}
                    conn.execute(update(outbox).where(outbox.c.id == row.id).values(**skipped))
                    continue
                if item.alert.event != "opened" and _opened_pending(conn, item):
                    # ordered delivery per receiver: try again once "opened" went out
                    wait = at + timedelta(seconds=self.retry.base_seconds)
                    conn.execute(update(outbox).where(outbox.c.id == row.id).values(next_attempt_at=wait))
                    continue
                claimed.append(item)
            if claimed:
                conn.execute(
                    update(outbox)
                    .where(outbox.c.id.in_([c.id for c in claimed]))
                    .values(lease_owner=self.owner, lease_expires_at=at + self.lease)
                )
            return claimed

    async def _deliver(self, item: _Claimed, at: datetime, started: float) -> None:
        channel = self.router.channels.get(item.receiver)
        error: str | None = None
        try:
            if channel is None:
                raise DeliveryError(f"receiver {item.receiver} is not configured any more")
            await channel.send(item.alert)
        except DeliveryError as exc:
            error = str(exc)
        except Exception as exc:  # a channel bug must not stop the other deliveries
            error = f"{item.receiver}: {type(exc).__name__}"
            log.exception("channel %s failed unexpectedly", item.receiver)
        # the pass's clock plus the time the send took (tests drive the clock through run_once)
        finished = at + timedelta(seconds=time.monotonic() - started)
        await asyncio.to_thread(self._finish, item, error, finished)

    def _finish(self, item: _Claimed, error: str | None, at: datetime) -> None:
        attempts = item.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "lease_owner": None, "lease_expires_at": None}
        if error is None:
            values["sent_at"] = at
            values["last_error"] = None
        else:
            give_up = self.retry.max_attempts is not None and attempts >= self.retry.max_attempts
            values["last_error"] = f"gave up after {attempts} attempts: {error}" if give_up else error
            values["next_attempt_at"] = (
                NEVER if give_up else at + timedelta(seconds=self.retry.delay(attempts))
            )
            log.warning("notification %s failed (attempt %d): %s", item.dedupe_key, attempts, error)
        with self.engine.begin() as conn:
            conn.execute(
                update(outbox)
                .where(outbox.c.id == item.id, outbox.c.lease_owner == self.owner)
                .values(**values)
            )


def _notification(delivery: dict[str, Any]) -> Notification:
    if "slo_alert" in delivery:
        return SloAlert.from_payload(delivery["slo_alert"])
    return Alert.from_payload(delivery["alert"])


def _keep_alive_slo_alerts(conn: Connection, every: float, at: datetime) -> None:
    """Re-post each firing SLO tier to Alertmanager once per `every` seconds it stays firing."""
    latest: dict[str, tuple[str, dict[str, Any]]] = {}
    rows = conn.execute(
        select(outbox.c.dedupe_key, outbox.c.payload)
        .where(outbox.c.kind == SLO_ALERT_KIND)
        .order_by(outbox.c.id)
    )
    for key, payload in rows:
        latest[f"{payload['slo']}:{payload['tier']}"] = (key, payload)
    for key, payload in latest.values():
        alert = SloAlert.from_payload(payload)
        if not alert.firing or alert.ends_at is not None or alert.started_at > at - timedelta(seconds=every):
            continue  # an alert with its own end (endsAt) stays firing in Alertmanager until then
        n = int((at - alert.started_at).total_seconds() // every)
        row = {
            "dedupe_key": f"{key}:resend:{n}>alertmanager",
            "kind": "delivery",
            "payload": {"receiver": "alertmanager", "slo_alert": payload},
            "created_at": at,
            "next_attempt_at": at,
        }
        insert_ignore(conn, outbox, [row], ["dedupe_key"])


def _earlier_slo_change_pending(conn: Connection, item: _Claimed) -> bool:
    """True while an earlier change of this SLO tier is unsent (not fanned out, or not to this receiver)."""
    assert isinstance(item.alert, SloAlert)
    same_tier = outbox.c.dedupe_key.startswith(item.alert.series_key, autoescape=True)
    pending = conn.execute(
        select(func.count()).where(
            same_tier,
            outbox.c.id < item.id,
            outbox.c.sent_at.is_(None),
            or_(
                outbox.c.kind == SLO_ALERT_KIND,
                outbox.c.dedupe_key.endswith(f">{item.receiver}", autoescape=True),
            ),
        )
    ).scalar_one()
    return bool(pending)


def _opened_payload(conn: Connection, incident_id: int) -> dict[str, Any] | None:
    payload = conn.execute(
        select(outbox.c.payload).where(outbox.c.dedupe_key == f"incident:{incident_id}:opened")
    ).scalar_one_or_none()
    return dict(payload) if payload is not None else None


def _resolved(conn: Connection, incident_id: int) -> bool:
    resolved_at = conn.execute(
        select(incidents.c.resolved_at).where(incidents.c.id == incident_id)
    ).scalar_one_or_none()
    return resolved_at is not None


def _opened_pending(conn: Connection, item: _Claimed) -> bool:
    """True while this receiver has an unsent "opened" for the same incident."""
    assert isinstance(item.alert, Alert)
    key = f"incident:{item.alert.incident_id}:opened>{item.receiver}"
    parent = f"incident:{item.alert.incident_id}:opened"
    pending = conn.execute(
        select(func.count()).where(
            or_(
                and_(outbox.c.dedupe_key == key, outbox.c.sent_at.is_(None)),
                and_(outbox.c.dedupe_key == parent, outbox.c.sent_at.is_(None)),
            )
        )
    ).scalar_one()
    return bool(pending)
