"""Batched writes: many small inserts from the scheduler, one transaction per batch.

At 10 000 probes a minute one transaction per result would spend the machine on
commits. Rows and operations queue in memory and are written together every
`interval` seconds or as soon as `max_rows` are waiting. `flush()` returns only after the
commit, so a caller that awaited it may treat everything it submitted before as durable
(a `kill -9` afterwards loses none of it).

A failing batch is never dropped: after a second failure its operations run one
transaction each, so a bad operation (a constraint violation, a bug) fails alone — its
future carries the error to the caller — and the rest commit. While the database is
away or locked (`OperationalError`), writes are retried with capped backoff, forever:
nothing queued is given up on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError

from lightkeeper.server.store.tables import results, state_changes

log = logging.getLogger(__name__)

Operation = Callable[[Connection], Any]


@dataclass
class _Pending:
    operation: Operation
    done: asyncio.Future[Any]


@dataclass
class _Batch:
    items: list[_Pending] = field(default_factory=list)


def insert_rows(table: Table, row: Mapping[str, Any]) -> Operation:
    values = dict(row)
    return lambda conn: conn.execute(table.insert(), [values])


class BatchWriter:
    """Queue operations on connections; run them in batches in a worker thread."""

    def __init__(
        self,
        engine: Engine,
        *,
        interval: float = 0.2,
        max_rows: int = 500,
        retry_initial: float = 0.1,
        retry_max: float = 5.0,
    ) -> None:
        self._engine = engine
        self._interval = interval
        self._max_rows = max_rows
        self._retry = (retry_initial, retry_max)
        self._queue: list[_Pending] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="lightkeeper-store-writer")

    async def stop(self) -> None:
        """Write everything queued, then stop the background loop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    def submit(self, operation: Operation) -> asyncio.Future[Any]:
        """Queue `operation(connection)`; the future resolves after its batch commits."""
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(operation, done))
        if len(self._queue) >= self._max_rows:
            self._wake.set()
        return done

    def append_result(
        self,
        probe: str,
        checked_at: datetime,
        ok: bool,
        status: str,
        latency_ms: float | None,
        error: str | None,
    ) -> asyncio.Future[Any]:
        row = {
            "probe": probe,
            "checked_at": checked_at,
            "ok": ok,
            "status": status,
            "latency_ms": latency_ms,
            "error": error,
        }
        return self.submit(insert_rows(results, row))

    def append_state_change(self, probe: str, at: datetime, state: str) -> asyncio.Future[Any]:
        return self.submit(insert_rows(state_changes, {"probe": probe, "at": at, "state": state}))

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def flush(self) -> None:
        """Return once everything submitted before this call is committed (or has failed alone)."""
        async with self._lock:
            while self._queue:
                batch, self._queue = self._queue[: self._max_rows], self._queue[self._max_rows :]
                await self._write(batch)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            await self.flush()

    async def _write(self, batch: list[_Pending]) -> None:
        delay, ceiling = self._retry
        attempt = 0
        while True:
            try:
                outcomes = await asyncio.to_thread(self._commit, [p.operation for p in batch])
            except Exception as error:
                attempt += 1
                log.warning("store batch of %d failed (attempt %d): %s", len(batch), attempt, error)
                if len(batch) > 1 and attempt >= 2:
                    for pending in batch:  # isolate a bad operation: the others still commit
                        await self._write([pending])
                    return
                if len(batch) == 1 and not _transient(error):
                    _settle(batch[0], error=error)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, ceiling)
                continue
            for pending, outcome in zip(batch, outcomes, strict=True):
                _settle(pending, value=outcome)
            return

    def _commit(self, operations: list[Operation]) -> list[Any]:
        with self._engine.begin() as conn:
            return [operation(conn) for operation in operations]


def _transient(error: BaseException) -> bool:
    """The database is away, busy or restarting: waiting helps, so the write is kept."""
    return isinstance(error, OperationalError | InterfaceError) and not isinstance(error, ProgrammingError)


def _settle(pending: _Pending, *, value: Any = None, error: BaseException | None = None) -> None:
    if pending.done.done():
        return
    if error is not None:
        pending.done.set_exception(error)
    else:
        pending.done.set_result(value)
