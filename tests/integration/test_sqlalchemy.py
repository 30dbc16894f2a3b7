"""SQLAlchemy integration against real PostgreSQL: psycopg (sync) and asyncpg (async)."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from structlog.testing import capture_logs

import lightkeeper
from lightkeeper.sdk.integrations.sqlalchemy import instrument_sqlalchemy, uninstrument_sqlalchemy
from tests.support import services

pytestmark = pytest.mark.integration

SECRET = "pw-sk-live-5up3r-s3cr3t"


def queries(operation: str, table: str) -> float:
    return (
        REGISTRY.get_sample_value("db_query_duration_seconds_count", {"operation": operation, "table": table})
        or 0.0
    )


def slow(operation: str, table: str) -> float:
    return REGISTRY.get_sample_value("db_slow_queries_total", {"operation": operation, "table": table}) or 0.0


def errors(error_type: str) -> float:
    return REGISTRY.get_sample_value("db_errors_total", {"error_type": error_type}) or 0.0


def gauge(name: str, pool: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"pool": pool})


def database_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


@pytest.fixture
def engine(postgres_url: str) -> Iterator[sa.Engine]:
    eng = sa.create_engine(
        postgres_url.replace("postgresql://", "postgresql+psycopg://"),
        pool_size=2,
        max_overflow=1,
        pool_timeout=5,
    )
    with eng.begin() as conn:
        conn.execute(sa.text("CREATE TABLE widgets (id serial PRIMARY KEY, name text, secret text)"))
    yield eng
    uninstrument_sqlalchemy(eng)
    eng.dispose()


@pytest.fixture
async def async_engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(postgres_url.replace("postgresql://", "postgresql+asyncpg://"))
    async with eng.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE gadgets (id serial PRIMARY KEY, name text)"))
    yield eng
    uninstrument_sqlalchemy(eng)
    await eng.dispose()


def terminate_backends(database: str) -> int:
    """Kill every server process of `database`, as a failover or a DBA would."""
    with psycopg.connect(services.PG_ADMIN_URL, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return len(rows)


def test_sync_queries_by_operation_and_table(engine: sa.Engine) -> None:
    lightkeeper.instrument_sqlalchemy(engine)
    before = queries("INSERT", "widgets"), queries("SELECT", "widgets"), queries("UPDATE", "widgets")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO widgets (name) VALUES (:n)"), {"n": "a"})
        conn.execute(sa.text("UPDATE widgets SET name = :n WHERE id = :i"), {"n": "b", "i": 1})
        assert conn.execute(sa.text("SELECT name FROM widgets")).scalar_one() == "b"
    assert queries("INSERT", "widgets") == before[0] + 1
    assert queries("UPDATE", "widgets") == before[2] + 1
    assert queries("SELECT", "widgets") == before[1] + 1


async def test_async_engine_is_instrumented_through_its_sync_engine(async_engine: AsyncEngine) -> None:
    lightkeeper.instrument_sqlalchemy(async_engine)
    before = queries("INSERT", "gadgets"), queries("SELECT", "gadgets")
    async with async_engine.begin() as conn:
        await conn.execute(sa.text("INSERT INTO gadgets (name) VALUES (:n)"), {"n": "x"})
        rows = (await conn.execute(sa.text('SELECT * FROM public."gadgets" WHERE id > :i'), {"i": 0})).all()
    assert len(rows) == 1
    assert (queries("INSERT", "gadgets"), queries("SELECT", "gadgets")) == (before[0] + 1, before[1] + 1)


def test_slow_query_is_counted_and_logged_without_parameters(engine: sa.Engine) -> None:
    instrument_sqlalchemy(engine, slow_query_seconds=0.1)
    before_slow, before_all = slow("SELECT", "none"), queries("SELECT", "none")
    with capture_logs() as logs, engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_sleep(0.25), CAST(:secret AS text)"), {"secret": SECRET})
        conn.execute(sa.text("SELECT 1"))  # fast: counted, not slow
    assert slow("SELECT", "none") == before_slow + 1
    assert queries("SELECT", "none") == before_all + 2
    warnings = [e for e in logs if e["event"] == "slow_query"]
    assert len(warnings) == 1
    line = warnings[0]
    assert line["log_level"] == "warning"
    assert "pg_sleep" in line["statement"] and "%(secret)s" in line["statement"]
    assert line["duration_seconds"] >= 0.25
    assert (line["operation"], line["table"], line["threshold_seconds"]) == ("SELECT", "none", 0.1)
    assert SECRET not in repr(logs)


def test_parameters_never_reach_logs_or_metrics(engine: sa.Engine) -> None:
    # A threshold so low that every statement is "slow" and logged.
    instrument_sqlalchemy(engine, slow_query_seconds=1e-9)
    with capture_logs() as logs, engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO widgets (name, secret) VALUES (:n, :s)"), {"n": "w", "s": SECRET})
        conn.execute(
            sa.insert(sa.table("widgets", sa.column("secret"))), [{"secret": SECRET}, {"secret": SECRET}]
        )
        conn.execute(sa.text(f"SELECT * FROM widgets WHERE secret = '{SECRET}'"))  # a literal in raw SQL
        conn.execute(sa.text("SELECT * FROM widgets WHERE secret = :s"), {"s": SECRET})
    assert len([e for e in logs if e["event"] == "slow_query"]) == 4
    assert SECRET not in repr(logs)
    assert SECRET not in generate_latest(REGISTRY).decode()


def test_sql_errors_are_counted_by_driver_exception(engine: sa.Engine) -> None:
    instrument_sqlalchemy(engine)
    with engine.connect() as conn, pytest.raises(sa.exc.ProgrammingError) as raised:
        conn.execute(sa.text("SELECT * FROM no_such_table WHERE secret = :s"), {"s": SECRET})
    error_type = type(raised.value.orig).__name__
    assert error_type == "UndefinedTable"
    assert errors(error_type) >= 1
    before = errors(error_type)
    with engine.connect() as conn, pytest.raises(sa.exc.ProgrammingError):
        conn.execute(sa.text("SELECT * FROM no_such_table"))
    assert errors(error_type) == before + 1
    assert SECRET not in generate_latest(REGISTRY).decode()


async def test_async_sql_errors_are_counted(async_engine: AsyncEngine) -> None:
    instrument_sqlalchemy(async_engine)
    before = errors("UndefinedTableError")
    async with async_engine.connect() as conn:
        with pytest.raises(sa.exc.ProgrammingError):
            await conn.execute(sa.text("SELECT * FROM missing_async_table"))
    # asyncpg's own class, not the generic ProgrammingError of SQLAlchemy's adapter.
    assert errors("UndefinedTableError") == before + 1


def test_pool_gauges_and_wait_time(postgres_url: str) -> None:
    # A password in the URL (the server trusts local connections and ignores it).
    url = sa.make_url(postgres_url).set(drivername="postgresql+psycopg", password="not-the-real-pw")
    eng = sa.create_engine(url, pool_size=2, max_overflow=1, pool_timeout=5)
    pool = database_of(postgres_url)
    instrument_sqlalchemy(eng)
    try:
        assert gauge("db_connections_max", pool) == 3
        waits = REGISTRY.get_sample_value("db_connection_wait_seconds_count", {"pool": pool}) or 0.0
        held = [eng.connect() for _ in range(3)]
        for conn in held:
            conn.execute(sa.text("SELECT 1"))
        assert gauge("db_connections_active", pool) == 3
        # A fourth checkout waits until another thread returns a connection.
        releaser = threading.Timer(0.3, held.pop().close)
        releaser.start()
        waited_sum = REGISTRY.get_sample_value("db_connection_wait_seconds_sum", {"pool": pool}) or 0.0
        extra = eng.connect()
        releaser.join()
        waited = (
            REGISTRY.get_sample_value("db_connection_wait_seconds_sum", {"pool": pool}) or 0.0
        ) - waited_sum
        assert waited >= 0.25
        assert REGISTRY.get_sample_value("db_connection_wait_seconds_count", {"pool": pool}) == waits + 4
        extra.close()
        for conn in held:
            conn.close()
        assert gauge("db_connections_active", pool) == 0
        assert gauge("db_connections_idle", pool) == 2  # the overflow connection was closed
        assert "not-the-real-pw" not in generate_latest(REGISTRY).decode()
    finally:
        uninstrument_sqlalchemy(eng)
        eng.dispose()


def test_database_going_down_mid_request_is_an_error_not_a_hang(engine: sa.Engine, postgres_url: str) -> None:
    instrument_sqlalchemy(engine)
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
        before = {t: errors(t) for t in ("AdminShutdown", "OperationalError")}
        assert terminate_backends(database_of(postgres_url)) >= 1
        start = time.monotonic()
        with pytest.raises(sa.exc.OperationalError) as raised:
            conn.execute(sa.text("SELECT 1"))
        assert time.monotonic() - start < 5.0
    error_type = type(raised.value.orig).__name__
    assert errors(error_type) == before.get(error_type, 0.0) + 1
    # The pool recovers on the next checkout.
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT 2")).scalar_one() == 2


async def test_async_database_going_down_mid_request(async_engine: AsyncEngine, postgres_url: str) -> None:
    instrument_sqlalchemy(async_engine)
    before = errors("ConnectionDoesNotExistError")
    async with async_engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))
        assert terminate_backends(database_of(postgres_url)) >= 1
        start = time.monotonic()
        with pytest.raises(sa.exc.DBAPIError):
            await conn.execute(sa.text("SELECT 1"))
        assert time.monotonic() - start < 5.0
    assert errors("ConnectionDoesNotExistError") == before + 1
    async with async_engine.connect() as conn:
        assert (await conn.execute(sa.text("SELECT 3"))).scalar_one() == 3


def test_unreachable_database_is_counted(postgres_url: str) -> None:
    port = services.closed_port()
    eng = sa.create_engine(
        f"postgresql+psycopg://postgres:{SECRET}@127.0.0.1:{port}/nope", connect_args={"connect_timeout": 2}
    )
    instrument_sqlalchemy(eng)
    try:
        before = errors("OperationalError")
        with pytest.raises(sa.exc.OperationalError):
            eng.connect()
        assert errors("OperationalError") == before + 1
        assert SECRET not in generate_latest(REGISTRY).decode()
    finally:
        uninstrument_sqlalchemy(eng)
        eng.dispose()


def test_instrumenting_twice_counts_once_and_uninstrument_stops(engine: sa.Engine) -> None:
    instrument_sqlalchemy(engine)
    instrument_sqlalchemy(engine)
    before = queries("SELECT", "widgets")
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT * FROM widgets"))
    assert queries("SELECT", "widgets") == before + 1
    uninstrument_sqlalchemy(engine)
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT * FROM widgets"))
    assert queries("SELECT", "widgets") == before + 1


def test_invalid_options_fail_loudly(engine: sa.Engine) -> None:
    with pytest.raises(ValueError, match="pool name"):
        instrument_sqlalchemy(engine, pool="has spaces and/slashes")
    with pytest.raises(ValueError, match="slow_query_seconds"):
        instrument_sqlalchemy(engine, slow_query_seconds=-1)
