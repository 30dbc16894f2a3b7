"""Workflow gauges sampled from the real local PostgreSQL.

Each test works in a schema of its own in the test database, dropped afterwards. Rows
get known ages (timestamptz and naive timestamp columns both), so counts, stuck counts
and the oldest age are exact; slowness is real: `pg_sleep` beyond the statement timeout,
and a table held under an exclusive lock by another session.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

import lightkeeper
from lightkeeper.sdk.workflow import query
from lightkeeper.testing import capture_logs
from lightkeeper.workflow import Aggregate, Entity, WorkflowSampler
from tests.support import services

pytestmark = pytest.mark.integration

WAIT = 10.0
APP_NAME = "lk_workflow_test"


def gauge(sample: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(sample, labels)


def _error_counts() -> dict[tuple[str, str], float]:
    return {
        (s.labels["entity"], s.labels["reason"]): s.value
        for metric in REGISTRY.collect()
        for s in metric.samples
        if s.name == "workflow_sample_errors_total"
    }


_errors_before: dict[tuple[str, str], float] = {}


@pytest.fixture(autouse=True)
def _count_errors_from_here() -> None:
    """The error counter is process-wide: each test reads what it added."""
    _errors_before.clear()
    _errors_before.update(_error_counts())


def errors(entity: str, reason: str) -> float:
    return _error_counts().get((entity, reason), 0.0) - _errors_before.get((entity, reason), 0.0)


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"lk_wf_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url("lk_admin"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {name}")
        conn.exec_driver_sql(
            f"""
            CREATE TABLE {name}.items (
                id serial PRIMARY KEY, status text NOT NULL, updated_at timestamptz NOT NULL
            );
            CREATE INDEX ON {name}.items (status, updated_at);
            INSERT INTO {name}.items (status, updated_at)
            SELECT s, now() - a FROM (VALUES
                ('publishing', interval '5 minutes'), ('publishing', interval '45 minutes'),
                ('publishing', interval '3 hours'), ('publishing', interval '30 hours'),
                ('exporting', interval '1 minute'), ('review', interval '3 days'),
                ('published', interval '10 days'), ('published', interval '10 days'),
                ('failed', interval '1 hour'), ('legacy', interval '2 days'), ('mystery', interval '1 day')
            ) AS v(s, a);
            CREATE TABLE {name}.jobs (status text, started_at timestamp without time zone);
            INSERT INTO {name}.jobs VALUES
                ('running', (now() AT TIME ZONE 'UTC') - interval '90 minutes'),
                ('running', (now() AT TIME ZONE 'UTC') - interval '10 minutes'),
                ('queued', (now() AT TIME ZONE 'UTC'));
            CREATE TABLE {name}.invites (id serial, accepted boolean);
            INSERT INTO {name}.invites (accepted) VALUES (false), (false), (false), (true);
            CREATE TABLE {name}.control (delay float);
            INSERT INTO {name}.control VALUES (0);
            """
        )
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {name} CASCADE")
        admin.dispose()


def url(application: str = APP_NAME) -> str:
    """The test database; the sampler's connections are told apart by their application name."""
    base = services.PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://")
    return f"{base}?application_name={application}"


@pytest.fixture
def samplers() -> Iterator[list[WorkflowSampler]]:
    started: list[WorkflowSampler] = []
    yield started
    for sampler in started:
        sampler.stop()


def start(samplers: list[WorkflowSampler], *args: Any, **kwargs: Any) -> WorkflowSampler:
    sampler = lightkeeper.instrument_workflow(*args, **kwargs)
    samplers.append(sampler)
    return sampler


def items(schema: str) -> Entity:
    return Entity(
        f"{schema}.items",
        processing=["publishing", "exporting"],
        waiting=["review"],
        terminal=["published"],
        failed=["failed"],
        stuck_after=["30m", "2h", "24h"],
    )


def pending(schema: str) -> Aggregate:
    # Sleeps for control.delay seconds first, so a test can make it slow at will.
    return Aggregate(
        "pending_invites",
        f"SELECT count(*) + 0 * length(pg_sleep((SELECT delay FROM {schema}.control))::text) "
        f"FROM {schema}.invites WHERE NOT accepted",
    )


def test_counts_stuck_counts_and_ages_are_exact(schema: str, samplers: list[WorkflowSampler]) -> None:
    jobs = Entity(f"{schema}.jobs", processing=["running"], waiting=["queued"], age_column="started_at")
    sampler = start(
        samplers, url(), entities=[items(schema), jobs], aggregates=[pending(schema)], background=False
    )

    assert sampler.sample_once() is True

    statuses = ("publishing", "exporting", "review", "published", "failed", "other")
    assert {s: gauge("workflow_entities", entity="items", status=s) for s in statuses} == {
        "publishing": 4,
        "exporting": 1,
        "review": 1,
        "published": 2,
        "failed": 1,
        "other": 2,  # legacy and mystery fold into one bounded value
    }
    stuck = {
        t: gauge("workflow_stuck_entities", entity="items", status="publishing", threshold=t)
        for t in ("30m", "2h", "24h")
    }
    assert stuck == {"30m": 3, "2h": 2, "24h": 1}
    oldest = gauge("workflow_oldest_processing_age_seconds", entity="items")
    assert oldest is not None and 30 * 3600 <= oldest < 30 * 3600 + 60
    # a naive `timestamp` column holding UTC times measures the same way
    assert gauge("workflow_stuck_entities", entity="jobs", status="running", threshold="30m") == 1
    assert gauge("workflow_stuck_entities", entity="jobs", status="running", threshold="24h") == 0
    job_age = gauge("workflow_oldest_processing_age_seconds", entity="jobs")
    assert job_age is not None and 90 * 60 <= job_age < 90 * 60 + 60
    assert gauge("workflow_aggregate", name="pending_invites") == 3


def test_pg_sleep_beyond_the_timeout_is_counted_logged_and_left_stale(
    schema: str, samplers: list[WorkflowSampler]
) -> None:
    sampler = start(
        samplers,
        url(),
        entities=[items(schema)],
        aggregates=[pending(schema)],
        timeout_seconds=0.5,
        background=False,
    )
    assert sampler.sample_once() is True
    admin = sa.create_engine(url("lk_admin"))
    with admin.begin() as conn:
        conn.exec_driver_sql(f"UPDATE {schema}.control SET delay = 5")
        conn.exec_driver_sql(f"UPDATE {schema}.invites SET accepted = true")  # the truth moves on...
    admin.dispose()
    time.sleep(1.0)

    began = time.monotonic()
    with capture_logs() as logs:
        assert sampler.sample_once() is False
    took = time.monotonic() - began

    assert took < 3.0, "statement_timeout did not cancel pg_sleep"
    assert errors("pending_invites", "timeout") == 1
    assert gauge("workflow_aggregate", name="pending_invites") == 3  # ...the gauge keeps its last good value
    stale = gauge("workflow_sample_age_seconds", entity="pending_invites")
    fresh = gauge("workflow_sample_age_seconds", entity="items")
    assert stale is not None and fresh is not None and stale > fresh + 0.9
    failed = [e for e in logs if e["event"] == "workflow_sample_failed"]
    assert [(e["entity"], e["reason"], e["error_type"]) for e in failed] == [
        ("pending_invites", "timeout", "OperationalError")
    ]
    assert "statement timeout" in failed[0]["error"]
    assert "pg_sleep" not in str(failed)  # the database's message, never the statement


def test_a_locked_table_times_out_without_blocking_the_others(
    schema: str, samplers: list[WorkflowSampler]
) -> None:
    sampler = start(
        samplers,
        url(),
        entities=[items(schema)],
        aggregates=[pending(schema)],
        timeout_seconds=0.5,
        background=False,
    )
    assert sampler.sample_once() is True
    locker = sa.create_engine(url("lk_admin"))
    with locker.connect() as conn, conn.begin():
        conn.exec_driver_sql(f"LOCK TABLE {schema}.items IN ACCESS EXCLUSIVE MODE")
        assert sampler.sample_once() is False
    locker.dispose()

    assert errors("items", "timeout") == 1
    assert gauge("workflow_entities", entity="items", status="publishing") == 4
    assert errors("pending_invites", "timeout") == 0
    assert sampler.sample_once() is True  # the lock is gone, and so is the staleness
    age = gauge("workflow_sample_age_seconds", entity="items")
    assert age is not None and age < 0.5


def _sampler_connections(app: str = APP_NAME) -> int:
    admin = sa.create_engine(url("lk_admin"))
    try:
        with admin.connect() as conn:
            return int(
                conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE application_name = %(app)s AND pid <> pg_backend_pid()",
                    {"app": app},
                ).scalar_one()
            )
    finally:
        admin.dispose()


def test_the_thread_runs_on_its_own_connection_and_stops_cleanly(
    schema: str, samplers: list[WorkflowSampler]
) -> None:
    app_engine = sa.create_engine(url(), pool_size=2)
    sampler = start(samplers, app_engine, entities=[items(schema)], interval_seconds=1.0, timeout_seconds=1.0)
    deadline = time.monotonic() + WAIT
    while gauge("workflow_entities", entity="items", status="publishing") is None:
        assert time.monotonic() < deadline, "the background sampler never sampled"
        time.sleep(0.05)

    assert app_engine.pool.checkedout() == 0  # never the application's pool
    assert _sampler_connections() == 1  # its own single pooled connection
    sampler.stop(timeout=WAIT)

    assert not sampler.running
    assert not [t for t in threading.enumerate() if t.name == "lightkeeper-workflow"]
    assert _sampler_connections() == 0
    assert gauge("workflow_entities", entity="items", status="publishing") is None
    app_engine.dispose()


def test_an_indexed_table_is_counted_from_its_index_alone(
    schema: str, samplers: list[WorkflowSampler]
) -> None:
    """The same 20 000 rows with and without the recommended index give the same gauges, and
    the indexed statement reads nothing but the index (after VACUUM sets the visibility map)."""
    admin = sa.create_engine(url("lk_admin"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        # varchar(20): the recursive walk must keep the column's exact type; ages sit 30 s
        # off whole minutes, so no row is on a threshold while the test runs.
        conn.exec_driver_sql(
            f"""
            CREATE TABLE {schema}.big (id serial PRIMARY KEY, status varchar(20), updated_at timestamptz);
            INSERT INTO {schema}.big (status, updated_at)
            SELECT CASE WHEN mod(i, 10) < 7 THEN 'done' WHEN mod(i, 10) = 7 THEN 'processing'
                        WHEN mod(i, 10) = 8 THEN 'publishing' WHEN mod(i, 97) = 0 THEN NULL
                        ELSE 'mystery' END,
                   now() - make_interval(mins => mod(i, 3000), secs => 30)
            FROM generate_series(1, 20000) AS i;
            CREATE TABLE {schema}.big_plain AS SELECT * FROM {schema}.big;
            CREATE INDEX ON {schema}.big (status, updated_at);
            """
        )
        for table in ("big", "big_plain"):
            conn.exec_driver_sql(f"VACUUM ANALYZE {schema}.{table}")
    admin.dispose()

    def entity(table: str) -> Entity:
        return Entity(
            f"{schema}.{table}",
            processing=["processing", "publishing"],
            terminal=["done"],
            stuck_after=["30m", "2h", "24h"],
        )

    sampler = start(samplers, url(), entities=[entity("big"), entity("big_plain")], background=False)
    assert sampler.sample_once() is True

    def gauges(name: str) -> dict[str, float | None]:
        found = {
            s: gauge("workflow_entities", entity=name, status=s) for s in ("done", "other", "processing")
        }
        for t in ("30m", "2h", "24h"):
            found[t] = gauge("workflow_stuck_entities", entity=name, status="publishing", threshold=t)
        found["oldest"] = gauge("workflow_oldest_processing_age_seconds", entity=name)
        return found

    indexed, plain = gauges("big"), gauges("big_plain")
    assert indexed == pytest.approx(plain, abs=5)  # the ages were read a moment apart
    publishing = [(i % 3000) * 60 + 30 for i in range(1, 20001) if i % 10 == 8]  # seconds old
    assert {k: v for k, v in indexed.items() if k != "oldest"} == {
        "done": 14000,
        "processing": 2000,
        "other": 2000,  # 'mystery' and the NULL statuses
        **{t: sum(age > s for age in publishing) for t, s in (("30m", 1800), ("2h", 7200), ("24h", 86400))},
    }

    with sa.create_engine(url()).connect() as conn:
        source = query.resolve(conn, entity("big"))
        assert (source.status_indexed, source.age_indexed) == (True, True)
        assert query.resolve(conn, entity("big_plain")).status_indexed is False
        statement = query.entity_query(entity("big"), source)
        statement = statement.params(query.cutoffs(entity("big"), source, datetime.now(UTC)))
        sql = statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        plan = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}").scalar_one()
    scans = _scans(plan[0]["Plan"])
    assert scans and {node["Node Type"] for node in scans} == {"Index Only Scan"}, scans
    assert sum(node["Heap Fetches"] for node in scans) == 0


def _scans(node: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of a JSON plan that reads a relation."""
    found = [node] if "Relation Name" in node else []
    for child in node.get("Plans", []):
        found += _scans(child)
    return found


def test_a_sample_cannot_write(schema: str, samplers: list[WorkflowSampler]) -> None:
    writes = Aggregate(
        "writes",
        f"WITH w AS (INSERT INTO {schema}.invites (accepted) VALUES (true) RETURNING 1) "
        "SELECT count(*) FROM w",
    )
    sampler = start(samplers, url(), entities=[items(schema)], aggregates=[writes], background=False)

    with capture_logs() as logs:
        assert sampler.sample_once() is False

    assert errors("writes", "query") == 1
    assert errors("items", "query") == 0
    failed = [e for e in logs if e["event"] == "workflow_sample_failed"]
    assert "read-only transaction" in failed[0]["error"]
    with sa.create_engine(url("lk_admin")).connect() as conn:
        assert conn.exec_driver_sql(f"SELECT count(*) FROM {schema}.invites").scalar_one() == 4


@pytest.mark.parametrize("connections", [1, 2])
def test_a_sample_spreads_its_statements_over_the_samplers_connections(
    samplers: list[WorkflowSampler], connections: int
) -> None:
    """Each statement reports the backend that ran it: as many backends as connections."""
    slow_pid = "SELECT pg_backend_pid() + 0 * length(pg_sleep(0.4)::text)"
    aggregates = [Aggregate(f"backend_{i}", slow_pid) for i in range(4)]
    # Its own application name: a backend another test just closed can linger in pg_stat_activity.
    app = f"lk_spread_{uuid.uuid4().hex[:8]}"
    sampler = start(samplers, url(app), aggregates=aggregates, background=False, connections=connections)
    assert sampler.sample_once()
    pids = {gauge("workflow_aggregate", name=a.name) for a in aggregates}
    assert None not in pids and len(pids) == connections
    assert _sampler_connections(app) == connections  # pooled, kept for the next sample


def test_when_no_connection_opens_every_statement_is_a_connection_error(
    schema: str, samplers: list[WorkflowSampler]
) -> None:
    refused = f"postgresql+psycopg://postgres@127.0.0.1:{services.free_port()}/test?connect_timeout=2"
    sampler = start(
        samplers, refused, entities=[items(schema)], aggregates=[pending(schema)], background=False
    )
    before = _error_counts()
    assert sampler.sample_once() is False
    after = _error_counts()
    for name in ("items", "pending_invites"):
        assert after.get((name, "connection"), 0) - before.get((name, "connection"), 0) == 1
