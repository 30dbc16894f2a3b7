"""The batched writer: one transaction per batch, acknowledged means committed."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from lightkeeper.server.store.tables import outbox, results, state_changes
from lightkeeper.server.store.writer import BatchWriter

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def commits(engine: Engine) -> list[int]:
    seen: list[int] = []
    event.listen(engine, "commit", lambda _conn: seen.append(1))
    return seen


def outbox_row(key: str) -> Any:
    row = {"dedupe_key": key, "kind": "webhook", "payload": {}, "created_at": T0, "next_attempt_at": T0}
    return lambda conn: conn.execute(outbox.insert(), [row])


async def test_flush_writes_in_batches_of_max_rows(engine: Engine) -> None:
    writer = BatchWriter(engine, max_rows=500)
    seen = commits(engine)
    for i in range(1200):
        writer.append_result(f"p{i % 7}", T0 + timedelta(seconds=i), i % 3 != 0, "up", 12.5, None)
    writer.append_state_change("p1", T0, "down")
    await writer.flush()
    assert count(engine, results) == 1200 and count(engine, state_changes) == 1
    assert len(seen) == 3  # 500 + 500 + 201, not 1201 transactions
    assert writer.pending == 0


async def test_the_background_loop_flushes_on_its_interval(engine: Engine) -> None:
    writer = BatchWriter(engine, interval=0.05)
    await writer.start()
    try:
        futures = [writer.append_result("p", T0, True, "up", 1.0, None) for _ in range(10)]
        await asyncio.wait_for(asyncio.gather(*futures), timeout=5)
        assert count(engine, results) == 10  # resolved futures mean committed rows
    finally:
        await writer.stop()


async def test_stop_writes_what_is_still_queued(engine: Engine) -> None:
    writer = BatchWriter(engine, interval=60)
    await writer.start()
    writer.append_result("p", T0, False, "down", None, "expected status 200, got 503")
    await writer.stop()
    with engine.connect() as conn:
        assert conn.execute(select(results.c.error)).scalar_one() == "expected status 200, got 503"


async def test_a_bad_operation_fails_alone_and_the_rest_commit(engine: Engine) -> None:
    writer = BatchWriter(engine, retry_initial=0.01)
    first = writer.submit(outbox_row("incident:1:opened"))
    duplicate = writer.submit(outbox_row("incident:1:opened"))  # the unique dedupe key refuses it
    good = [writer.append_result("p", T0, True, "up", 1.0, None) for _ in range(5)]
    await writer.flush()
    await first
    with pytest.raises(IntegrityError):
        await duplicate
    await asyncio.gather(*good)
    assert count(engine, outbox) == 1 and count(engine, results) == 5


async def test_an_unavailable_database_is_retried_until_the_write_lands(engine: Engine) -> None:
    attempts: list[int] = []

    def flaky(conn: Connection) -> str:
        attempts.append(1)
        if len(attempts) <= 4:
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        conn.execute(state_changes.insert(), [{"probe": "p", "at": T0, "state": "up"}])
        return "done"

    writer = BatchWriter(engine, retry_initial=0.01, retry_max=0.02)
    result = writer.append_result("p", T0, True, "up", 1.0, None)
    retried = writer.submit(flaky)
    await asyncio.wait_for(writer.flush(), timeout=10)
    assert await retried == "done" and len(attempts) == 5
    await result
    assert count(engine, results) == 1 and count(engine, state_changes) == 1


CRASHING_WRITER = """
import asyncio, sys
from datetime import UTC, datetime, timedelta
from lightkeeper.server.store.db import make_engine
from lightkeeper.server.store.writer import BatchWriter

async def main():
    kwargs = {"connect_args": {"options": sys.argv[2]}} if sys.argv[2] else {}
    writer = BatchWriter(make_engine(sys.argv[1], **kwargs), interval=3600)
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    for i in range(700):
        writer.append_result("p", t0 + timedelta(seconds=i), True, "up", 5.0, None)
    await writer.flush()
    print("acked", flush=True)
    for i in range(50):  # queued, never flushed: may be lost, and that is allowed
        writer.append_result("p", t0, True, "up", 5.0, None)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def test_acknowledged_rows_survive_kill_9(engine: Engine) -> None:
    search_path = _search_path(engine)
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CRASHING_WRITER,
            engine.url.render_as_string(hide_password=False),
            search_path,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "acked"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    assert count(engine, results) == 700


def _search_path(engine: Engine) -> str:
    if engine.dialect.name != "postgresql":
        return ""
    with engine.connect() as conn:
        schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
    return f"-csearch_path={schema}"
