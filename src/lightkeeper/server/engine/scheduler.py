"""Keep every probe on its interval, across one process or several replicas.

The plan lives in the database, not in memory: `probe_state.next_run_at` is the next
planned run of each probe. A replica *claims* due probes in one short transaction —
`SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL — and, in the same transaction,
advances `next_run_at` by exactly one interval and takes a lease that covers the
run. Because the planned time moves forward atomically with the claim, each planned
run belongs to exactly one replica; because the next plan is "previous plan +
interval" (not "finished + interval"), probes do not drift. The lease only stops a
replica from starting the next run while the previous one is still in flight; it is
released with the result. A replica that dies leaves a lease that expires
`timeout + grace` after the planned time, so its probes are picked up by the others
within two intervals. SQLite runs the same code with one replica (the store's guard
refuses a second process).

First runs are spread at random over one interval, so a restart with 10 000 probes
does not fire them all in the same second. Each run is its own task behind a
concurrency semaphore and `run_probe` enforces the probe's timeout, so a hanging
target holds one slot for at most its timeout and never delays the others. Results
are applied in batches, one transaction each (`transitions.apply_results`). HTTP
probes share one client sized to the concurrency (`probes.http.shared_client`);
bench/server_probes.py measures what this sustains.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Engine, bindparam, or_, select, update

from lightkeeper.server.engine.lag import LagSummary, LagWindow
from lightkeeper.server.engine.maintenance import Calendar, calendar_from_rows
from lightkeeper.server.engine.sql import insert_ignore, lock_rows
from lightkeeper.server.engine.transitions import Applied, apply_results
from lightkeeper.server.probes import http as probes_http
from lightkeeper.server.probes.connectivity import ConnectivityChecker
from lightkeeper.server.probes.heartbeat import HeartbeatHistory, Ping
from lightkeeper.server.probes.run import run_probe
from lightkeeper.server.store.tables import heartbeat_pings, maintenance, probe_state, probes
from lightkeeper.spec.probes import HeartbeatProbe, Probe

log = logging.getLogger(__name__)
_PROBE = TypeAdapter(Probe)
_HEARTBEAT_PINGS = 200


@dataclass(frozen=True, slots=True)
class SchedulerOptions:
    concurrency: int = 200
    tick_seconds: float = 0.1  # how often due probes are claimed
    lookahead_seconds: float = 0.5  # claimed this early so they start on time
    claim_limit: int = 1000
    refresh_seconds: float = 5.0  # new probes and maintenance windows are seen this fast
    flush_seconds: float = 0.1
    flush_rows: int = 500
    lease_grace_seconds: float = 1.0  # beyond the timeout; at most half an interval
    service: str = "lightkeeper"
    stop_timeout_seconds: float = 30.0  # how long a stop waits for queued results to be written
    lag_samples: int = 10_000  # recent runs kept for the lag percentiles


@dataclass(frozen=True, slots=True)
class Run:
    """One claimed execution: which probe, for which planned time."""

    probe: Probe
    planned: datetime
    watching_since: datetime


class Scheduler:
    def __init__(
        self,
        engine: Engine,
        *,
        owner: str | None = None,
        options: SchedulerOptions | None = None,
        connectivity: ConnectivityChecker | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.engine = engine
        self.owner = owner or uuid.uuid4().hex
        self.options = options or SchedulerOptions()
        self.connectivity = connectivity
        self.release_leases_on_stop = True
        self.executed: deque[tuple[str, datetime]] = deque(maxlen=100_000)  # started: (probe, planned)
        self.completed = 0  # runs whose result was handed to the writer
        self._client = http_client
        self._lag = LagWindow(self.options.lag_samples)
        self._calendar = Calendar()
        self._parsed: dict[str, tuple[Any, Probe]] = {}
        self._queue: asyncio.Queue[Applied | None] = asyncio.Queue()
        self._runs: set[asyncio.Task[None]] = set()
        self._semaphore = asyncio.Semaphore(self.options.concurrency)

    # --- public ------------------------------------------------------------------------
    def lag(self) -> LagSummary:
        """Planned-versus-actual start of recent runs (for the scheduler-lag metric)."""
        return self._lag.summary()

    @property
    def in_flight(self) -> int:
        return len(self._runs)

    @property
    def pending_writes(self) -> int:
        """Finished runs whose results are not committed yet (grows when the store falls behind)."""
        return self._queue.qsize()

    async def run(self) -> None:
        """Schedule until cancelled; on cancellation finish writing and release the leases."""
        own_client = self._client is None
        client = self._client or probes_http.shared_client(self.options.concurrency)
        self._client = client
        loops = [
            asyncio.create_task(self._refresh_loop(), name="lightkeeper-refresh"),
            asyncio.create_task(self._claim_loop(), name="lightkeeper-claim"),
        ]
        # the writer is stopped with a sentinel, never cancelled: a batch taken off the
        # queue is always committed, so no finished run is lost on shutdown
        writer = asyncio.create_task(self._write_loop(), name="lightkeeper-write")
        try:
            done, _ = await asyncio.wait([*loops, writer], return_when=asyncio.FIRST_COMPLETED)
            for task in done:  # the loops only end by crashing; make that visible to the caller
                task.result()
        finally:
            for task in [*loops, *self._runs]:
                task.cancel()
            await asyncio.gather(*loops, *self._runs, return_exceptions=True)
            self._queue.put_nowait(None)
            try:
                await asyncio.wait_for(writer, self.options.stop_timeout_seconds)
            except TimeoutError:
                log.error(
                    "results still unwritten after %.0f s; giving up", self.options.stop_timeout_seconds
                )
            if self.release_leases_on_stop:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self._release_all)
            if own_client:
                await client.aclose()
                self._client = None

    async def refresh(self) -> None:
        """Seed plans for new probes and reload maintenance windows (also run periodically)."""
        self._calendar = await asyncio.to_thread(self._seed_and_load)

    # --- loops -------------------------------------------------------------------------
    async def _refresh_loop(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:
                log.exception("scheduler refresh failed; retrying")
            await asyncio.sleep(self.options.refresh_seconds)

    async def _claim_loop(self) -> None:
        while True:
            try:
                claimed = await asyncio.to_thread(self._claim, datetime.now(UTC))
            except Exception:
                log.exception("claiming due probes failed; retrying")
                claimed = []
            for run in claimed:
                task = asyncio.create_task(self._execute(run), name=f"probe-{run.probe.name}")
                self._runs.add(task)
                task.add_done_callback(self._runs.discard)
            await asyncio.sleep(self.options.tick_seconds)

    async def _write_loop(self) -> None:
        """Collect results for `flush_seconds` (or until `flush_rows`), then write them in one go.

        The batch is gathered by sleeping once and taking what is queued, not by waiting for
        each item: per-item waits cost the event loop several turns a result, and when the
        loop was busy the writer fell behind the probes without bound.
        """
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                return
            if self._queue.qsize() < self.options.flush_rows:
                await asyncio.sleep(self.options.flush_seconds)
            batch = [first]
            while len(batch) < self.options.flush_rows and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            await self._flush(batch)

    async def _flush(self, batch: list[Applied]) -> None:
        """Write a batch; a failing database is retried, results are never dropped."""
        delay = 0.2
        while True:
            try:
                await asyncio.to_thread(apply_results, self.engine, batch, service=self.options.service)
                return
            except Exception:
                log.exception("writing %d probe results failed; retrying in %.1f s", len(batch), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _execute(self, run: Run) -> None:
        try:
            await self._execute_once(run)
        except Exception:  # run_probe never raises; this guards the store reads around it
            log.exception("probe %s could not run", run.probe.name)

    async def _execute_once(self, run: Run) -> None:
        wait = (run.planned - datetime.now(UTC)).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)
        async with self._semaphore:
            self._lag.add((datetime.now(UTC) - run.planned).total_seconds())
            self.executed.append((run.probe.name, run.planned))
            history = None
            if isinstance(run.probe, HeartbeatProbe):
                history = await asyncio.to_thread(self._heartbeat_history, run.probe.name, run.watching_since)
            result = await run_probe(
                run.probe, connectivity=self.connectivity, http_client=self._client, heartbeat=history
            )
        covered = self._calendar.covers(run.probe.name, result.checked_at)
        self._queue.put_nowait(Applied(run.probe, result, covered, self.owner))
        self.completed += 1

    # --- database (run in a worker thread) ------------------------------------------------
    def _claim(self, now: datetime) -> list[Run]:
        horizon = now + timedelta(seconds=self.options.lookahead_seconds)
        with self.engine.begin() as conn:
            query = (
                select(probe_state.c.probe, probe_state.c.next_run_at, probes.c.config, probes.c.created_at)
                .join(probes, probes.c.name == probe_state.c.probe)
                .where(
                    probes.c.deleted_at.is_(None),
                    probe_state.c.next_run_at <= horizon,
                    or_(probe_state.c.lease_expires_at.is_(None), probe_state.c.lease_expires_at < now),
                )
                .order_by(probe_state.c.next_run_at)
                .limit(self.options.claim_limit)
            )
            rows = conn.execute(lock_rows(conn, query, skip_locked=True, of=probe_state)).all()
            runs: list[Run] = []
            plans: list[dict[str, Any]] = []
            for row in rows:
                probe = self._probe(row.probe, row.config)
                if probe is None:  # unreadable config: look again in a minute, do not spin
                    plans.append(
                        {"b_probe": row.probe, "b_next": now + timedelta(minutes=1), "b_lease": None}
                    )
                    continue
                interval = probe.interval_seconds
                planned = row.next_run_at
                behind = (now - planned).total_seconds()
                if behind > interval:  # missed runs (stopped server, dead replica): rejoin the grid
                    planned += timedelta(seconds=interval * math.floor(behind / interval))
                grace = min(self.options.lease_grace_seconds, interval / 2)
                lease = planned + timedelta(seconds=probe.timeout_seconds + grace)
                plans.append(
                    {"b_probe": row.probe, "b_next": planned + timedelta(seconds=interval), "b_lease": lease}
                )
                runs.append(Run(probe, planned, row.created_at))
            if plans:
                conn.execute(
                    update(probe_state)
                    .where(probe_state.c.probe == bindparam("b_probe"))
                    .values(
                        next_run_at=bindparam("b_next"),
                        lease_expires_at=bindparam("b_lease"),
                        lease_owner=self.owner,
                    ),
                    plans,
                )
            return runs

    def _probe(self, name: str, config: Any) -> Probe | None:
        cached = self._parsed.get(name)
        if cached is not None and cached[0] == config:
            return cached[1]
        try:
            probe = _PROBE.validate_python(config)
        except ValidationError as exc:
            log.error("probe %s has an invalid stored config (%d errors); skipped", name, exc.error_count())
            return None
        self._parsed[name] = (config, probe)
        return probe

    def _seed_and_load(self) -> Calendar:
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            unplanned = conn.execute(
                select(probes.c.name, probes.c.config)
                .outerjoin(probe_state, probe_state.c.probe == probes.c.name)
                .where(probes.c.deleted_at.is_(None), probe_state.c.next_run_at.is_(None))
            ).all()
            seeds = []
            for row in unplanned:
                probe = self._probe(row.name, row.config)
                interval = probe.interval_seconds if probe is not None else 60
                seeds.append(
                    {"b_probe": row.name, "b_next": now + timedelta(seconds=random.uniform(0, interval))}
                )
            if seeds:
                insert_ignore(conn, probe_state, [{"probe": s["b_probe"]} for s in seeds], ["probe"])
                conn.execute(
                    update(probe_state)
                    .where(probe_state.c.probe == bindparam("b_probe"), probe_state.c.next_run_at.is_(None))
                    .values(next_run_at=bindparam("b_next")),
                    seeds,
                )
            windows = conn.execute(select(maintenance)).mappings().all()
        return calendar_from_rows(windows)

    def _heartbeat_history(self, probe: str, since: datetime) -> HeartbeatHistory:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(heartbeat_pings.c.at, heartbeat_pings.c.kind, heartbeat_pings.c.exit_code)
                .where(heartbeat_pings.c.probe == probe)
                .order_by(heartbeat_pings.c.at.desc())
                .limit(_HEARTBEAT_PINGS)
            ).all()
        pings = [Ping(r.at, r.kind, r.exit_code) for r in reversed(rows)]
        return HeartbeatHistory(pings, since)

    def _release_all(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(probe_state)
                .where(probe_state.c.lease_owner == self.owner)
                .values(lease_owner=None, lease_expires_at=None)
            )
