"""Migrations, SQLite settings, timestamps and constraints on both backends."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import IntegrityError, StatementError

from lightkeeper.server.slo import samples as _slo_samples  # noqa: F401  (registers its table)
from lightkeeper.server.store.db import DEFAULT_URL, make_engine, resolve_url, upgrade
from lightkeeper.server.store.single_replica import StoreInUse, claim_single_replica
from lightkeeper.server.store.tables import incidents, metadata, results

TABLES = {
    "probes",
    "probe_state",
    "results",
    "state_changes",
    "rollups",
    "incidents",
    "maintenance",
    "outbox",
    "heartbeat_pings",
    "admin_tokens",
    "instances",
}
LATER_TABLES = {"llm_events", "llm_daily", "slo_samples", "deployments"}


def test_migrations_create_every_table_from_empty_and_match_the_models(blank_engine: Engine) -> None:
    assert TABLES.isdisjoint(inspect(blank_engine).get_table_names())
    upgrade(blank_engine)
    upgrade(blank_engine)  # a second run is a no-op, not an error
    # the core tables, plus those the later features added (LLM cost, SLO samples,
    # deployments), all on the one MetaData
    assert TABLES | LATER_TABLES | {"alembic_version"} == set(inspect(blank_engine).get_table_names())
    assert set(metadata.tables) == TABLES | LATER_TABLES
    with blank_engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == "0004"
        # the hand-written revision and tables.py describe the same schema
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_urls_default_to_a_file_here_and_postgres_means_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIGHTKEEPER_DB_URL", raising=False)
    assert resolve_url(None) == DEFAULT_URL == "sqlite:///./lightkeeper.db"
    monkeypatch.setenv("LIGHTKEEPER_DB_URL", "postgres://u@h/db")
    assert resolve_url(None) == "postgresql+psycopg://u@h/db"
    assert resolve_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert resolve_url("sqlite:///other.db") == "sqlite:///other.db"


def test_timestamps_come_back_as_the_same_utc_instant(engine: Engine) -> None:
    berlin = timezone(timedelta(hours=1))
    at = datetime(2026, 11, 3, 0, 30, 0, 123456, tzinfo=berlin)
    with engine.begin() as conn:
        conn.execute(results.insert(), [{"probe": "p", "checked_at": at, "ok": True, "status": "up"}])
        back = conn.execute(select(results.c.checked_at)).scalar_one()
        # comparisons in SQL use the UTC value: 23:30 UTC the day before
        assert conn.execute(
            select(results.c.id).where(results.c.checked_at < datetime(2026, 11, 3, tzinfo=UTC))
        ).all()
    assert back == at and back.tzinfo == UTC and back.hour == 23


def test_naive_timestamps_are_refused(engine: Engine) -> None:
    with pytest.raises(StatementError, match="naive datetime"), engine.begin() as conn:
        conn.execute(
            results.insert(), [{"probe": "p", "checked_at": datetime(2026, 1, 1), "ok": True, "status": "up"}]
        )


def test_the_database_allows_one_open_incident_per_probe(engine: Engine) -> None:
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            incidents.insert(), [{"probe": "a", "started_at": t0, "resolved_at": t0 + timedelta(hours=1)}]
        )
        conn.execute(incidents.insert(), [{"probe": "a", "started_at": t0 + timedelta(hours=2)}])
        conn.execute(incidents.insert(), [{"probe": "b", "started_at": t0 + timedelta(hours=2)}])
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(incidents.insert(), [{"probe": "a", "started_at": t0 + timedelta(hours=3)}])


HOLD_LOCK = """
import sys, time
from lightkeeper.server.store.db import make_engine
from lightkeeper.server.store.single_replica import claim_single_replica
lock = claim_single_replica(make_engine(sys.argv[1]))
print("locked", flush=True)
time.sleep(60)
"""


def test_sqlite_refuses_a_second_replica_until_the_first_is_killed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lightkeeper.db'}"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, url], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreInUse, match=rf"pid {holder.pid}\).*one replica.*PostgreSQL"):
            claim_single_replica(make_engine(url))
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    deadline = time.monotonic() + 5
    while True:  # the kernel releases the flock with the process; no stale lock remains
        try:
            lock = claim_single_replica(make_engine(url))
            break
        except StoreInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    with pytest.raises(StoreInUse):
        claim_single_replica(make_engine(url))
    lock.release()
    claim_single_replica(make_engine(url)).release()


def test_postgres_and_memory_need_no_lock() -> None:
    with claim_single_replica(make_engine("postgresql://postgres@127.0.0.1:5432/test")) as lock:
        assert lock.path is None
    with claim_single_replica(make_engine("sqlite://")) as lock:
        assert lock.path is None
