"""The workflow sampler on a real SQLite file: counts, timeouts, staleness, its thread, its cost."""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

import lightkeeper
from lightkeeper.testing import capture_logs
from lightkeeper.workflow import Aggregate, DeclarationError, Entity, WorkflowSampler

# A query SQLite needs seconds for: counting a recursive sequence of 50 million numbers.
SLOW_SQL = (
    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 50000000) "
    "SELECT count(*) FROM n"
)
WAIT = 10.0  # bound of every wait for the background thread


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
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    now = datetime.now(UTC).replace(tzinfo=None)
    items = sa.table("items", sa.column("status"), sa.column("updated_at", sa.DateTime))
    ages = {
        "publishing": [timedelta(minutes=5), timedelta(minutes=45), timedelta(hours=3), timedelta(hours=30)],
        "exporting": [timedelta(minutes=1)],
        "review": [timedelta(days=3)],  # waiting for a person: never stuck
        "published": [timedelta(days=10)] * 3,
        "failed": [timedelta(hours=1)],
        "legacy_state": [timedelta(days=2)] * 2,
        "other_legacy": [timedelta(days=2)],
    }
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE items (id INTEGER PRIMARY KEY, status TEXT, updated_at DATETIME)")
        conn.exec_driver_sql("CREATE TABLE invites (id INTEGER PRIMARY KEY, accepted INTEGER)")
        conn.exec_driver_sql("INSERT INTO invites (accepted) VALUES (0), (0), (1)")
        rows = [{"status": s, "updated_at": now - age} for s, found in ages.items() for age in found]
        conn.execute(sa.insert(items), rows)
    yield engine
    engine.dispose()


ITEMS = Entity(
    "items",
    processing=["publishing", "exporting"],
    waiting=["review"],
    terminal=["published"],
    failed=["failed"],
    stuck_after=["30m", "2h", "24h"],
)
PENDING = Aggregate("pending_invites", "SELECT count(*) FROM invites WHERE accepted = 0")


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


# Each index below gives the sampler a different query shape; the numbers must not change.
INDEXES = {
    "none": None,
    "status_and_age": "CREATE INDEX items_status_age ON items (status, updated_at)",
    "status_only": "CREATE INDEX items_status ON items (status)",
    "partial": "CREATE INDEX items_open ON items (status, updated_at) WHERE status <> 'published'",
}


@pytest.mark.parametrize("index", INDEXES.values(), ids=INDEXES.keys())
def test_one_sample_gives_exact_counts_stuck_counts_and_oldest_age(
    engine: sa.Engine, samplers: list[WorkflowSampler], index: str | None
) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO items (status, updated_at) VALUES (NULL, '2020-01-01 00:00:00')")
        if index is not None:
            conn.exec_driver_sql(index)
    sampler = start(samplers, engine, entities=[ITEMS], aggregates=[PENDING], background=False)

    assert sampler.sample_once() is True

    counts = {s: gauge("workflow_entities", entity="items", status=s) for s in (*ITEMS.statuses, "other")}
    assert counts == {
        "publishing": 4,
        "exporting": 1,
        "review": 1,
        "published": 3,
        "failed": 1,
        "other": 4,  # legacy_state x2 and other_legacy, declared nowhere, and a NULL status
    }
    stuck = {
        t: gauge("workflow_stuck_entities", entity="items", status="publishing", threshold=t)
        for t in ("30m", "2h", "24h")
    }
    assert stuck == {"30m": 3, "2h": 2, "24h": 1}
    assert gauge("workflow_stuck_entities", entity="items", status="exporting", threshold="30m") == 0
    assert gauge("workflow_stuck_entities", entity="items", status="review", threshold="30m") is None
    oldest = gauge("workflow_oldest_processing_age_seconds", entity="items")
    assert oldest is not None and 30 * 3600 <= oldest < 30 * 3600 + 60
    assert gauge("workflow_aggregate", name="pending_invites") == 2
    age = gauge("workflow_sample_age_seconds", entity="items")
    assert age is not None and 0 <= age < 5


def test_a_slow_query_is_stopped_counted_logged_and_leaves_stale_values(
    engine: sa.Engine, samplers: list[WorkflowSampler]
) -> None:
    switch = sa.table("switch", sa.column("slow"))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE switch (slow INTEGER)")
        conn.execute(sa.insert(switch), [{"slow": 0}])
    # Slow only once the switch is on: the first sample succeeds, the second overruns.
    slow = Aggregate(
        "pending_invites",
        "SELECT CASE WHEN (SELECT slow FROM switch) = 1 "
        f"THEN ({SLOW_SQL}) ELSE (SELECT count(*) FROM invites WHERE accepted = 0) END",
    )
    sampler = start(
        samplers, engine, entities=[ITEMS], aggregates=[slow], timeout_seconds=0.3, background=False
    )
    assert sampler.sample_once() is True
    with engine.begin() as conn:
        conn.execute(sa.update(switch).values(slow=1))
    time.sleep(1.0)

    began = time.monotonic()
    with capture_logs() as logs:
        assert sampler.sample_once() is False
    took = time.monotonic() - began

    assert took < 3.0, "the statement timeout did not stop the query"
    assert errors("pending_invites", "timeout") == 1
    assert gauge("workflow_aggregate", name="pending_invites") == 2  # the last good value, kept
    stale = gauge("workflow_sample_age_seconds", entity="pending_invites")
    fresh = gauge("workflow_sample_age_seconds", entity="items")
    assert stale is not None and fresh is not None and stale > fresh + 0.9
    failed = [e for e in logs if e["event"] == "workflow_sample_failed"]
    assert [(e["entity"], e["reason"], e["level"]) for e in failed] == [
        ("pending_invites", "timeout", "warning")
    ]
    assert "RECURSIVE" not in str(failed)  # the database's message, never the statement


def test_a_failing_query_is_counted_and_others_still_sampled(
    engine: sa.Engine, samplers: list[WorkflowSampler]
) -> None:
    broken = Entity("missing_table", processing=["running"])
    wrong_column = Entity("items", processing=["running"], age_column="created_at", name="items_created")
    sampler = start(samplers, engine, entities=[broken, wrong_column, ITEMS], background=False)

    with capture_logs() as logs:
        assert sampler.sample_once() is False

    assert errors("missing_table", "query") == 1
    assert errors("items_created", "query") == 1
    assert gauge("workflow_entities", entity="missing_table", status="running") is None  # never a made-up 0
    assert gauge("workflow_entities", entity="items", status="publishing") == 4
    assert {e["entity"] for e in logs if e["event"] == "workflow_sample_failed"} == {
        "missing_table",
        "items_created",
    }


def test_an_unreachable_database_is_a_connection_error(
    tmp_path: Path, samplers: list[WorkflowSampler]
) -> None:
    url = f"sqlite:///{tmp_path / 'no_such_dir' / 'app.db'}"
    sampler = start(samplers, url, entities=[ITEMS], background=False)

    assert sampler.sample_once() is False
    assert errors("items", "connection") == 1


def test_the_thread_samples_at_once_and_stops_cleanly(
    engine: sa.Engine, samplers: list[WorkflowSampler]
) -> None:
    sampler = start(samplers, engine, entities=[ITEMS], interval_seconds=1.0, timeout_seconds=1.0)
    deadline = time.monotonic() + WAIT
    while gauge("workflow_entities", entity="items", status="publishing") is None:
        assert time.monotonic() < deadline, "the background sampler never sampled"
        time.sleep(0.05)
    assert sampler.running

    sampler.stop(timeout=WAIT)

    assert not sampler.running
    assert not [t for t in threading.enumerate() if t.name == "lightkeeper-workflow"]
    # A stopped sampler's series go: nothing left to report as if it were current.
    assert gauge("workflow_entities", entity="items", status="publishing") is None
    assert gauge("workflow_sample_age_seconds", entity="items") is None
    with pytest.raises(RuntimeError, match="stopped"):
        sampler.sample_once()


def test_requests_never_run_a_sampling_query(engine: sa.Engine, samplers: list[WorkflowSampler]) -> None:
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # Only this test's database: the sampler opens its own engine on it, while
        # collectors other tests left in the process registry query theirs on /metrics.
        if conn.engine.url.database == engine.url.database:
            statements.append(statement)

    app = Starlette(routes=[Route("/ping", lambda request: PlainTextResponse("pong"))])
    lightkeeper.instrument(app, service="wf", configure_logging=False)
    sa.event.listen(sa.Engine, "before_cursor_execute", count)
    try:
        sampler = start(samplers, engine, entities=[ITEMS], aggregates=[PENDING], interval_seconds=3600)
        deadline = time.monotonic() + WAIT
        while gauge("workflow_aggregate", name="pending_invites") is None:
            assert time.monotonic() < deadline, "the first sample never happened"
            time.sleep(0.05)
        after_first = len(statements)
        assert after_first >= 2  # the entity's grouped query and the aggregate ran once

        with TestClient(app) as client:
            for _ in range(50):
                assert client.get("/ping").status_code == 200
            assert "workflow_entities" in client.get("/metrics").text

        assert len(statements) == after_first
        assert sampler.running
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", count)


SHAPES = {  # index -> (what the statement must contain, what it must not)
    "none": ("GROUP BY", "WITH RECURSIVE"),
    "status_and_age": ("WITH RECURSIVE", "GROUP BY"),  # walked and ranged: no scan
    "status_only": ("WITH RECURSIVE", None),  # counts walk the index, ages are grouped
    "partial": ("GROUP BY", "WITH RECURSIVE"),  # it cannot count the rows it leaves out
}


@pytest.mark.parametrize("index", INDEXES, ids=INDEXES.keys())
def test_one_query_per_entity_shaped_by_its_indexes(
    engine: sa.Engine, samplers: list[WorkflowSampler], index: str
) -> None:
    statements: list[tuple[str, Any]] = []

    def count(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        statements.append((statement, parameters))

    if INDEXES[index] is not None:
        with engine.begin() as conn:
            conn.exec_driver_sql(INDEXES[index])
    sampler = start(samplers, engine, entities=[ITEMS], background=False)
    sampler.sample_once()  # reflects the table and its indexes once
    sa.event.listen(sa.Engine, "before_cursor_execute", count)
    try:
        sampler.sample_once()
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", count)

    assert len(statements) == 1
    (statement, parameters), (present, absent) = statements[0], SHAPES[index]
    assert present in statement
    assert absent is None or absent not in statement
    if index == "status_and_age":
        with engine.connect() as conn:
            plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
        assert not [step for step in plan if step.startswith("SCAN items")], plan
        assert [step for step in plan if "USING COVERING INDEX items_status_age" in step]


def test_an_in_memory_database_is_sampled_through_the_callers_engine(samplers: list[WorkflowSampler]) -> None:
    memory = sa.create_engine("sqlite://", poolclass=sa.pool.StaticPool)
    with memory.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE jobs (status TEXT, updated_at DATETIME)")
        conn.exec_driver_sql("INSERT INTO jobs VALUES ('running', '2020-01-01 00:00:00')")
    sampler = start(samplers, memory, entities=[Entity("jobs", processing=["running"])], background=False)

    assert sampler.sample_once() is True
    assert gauge("workflow_stuck_entities", entity="jobs", status="running", threshold="24h") == 1
    sampler.stop()
    with memory.connect() as conn:  # the caller's engine and its database survive stop()
        assert conn.exec_driver_sql("SELECT count(*) FROM jobs").scalar() == 1


def test_misuse_is_refused(engine: sa.Engine, samplers: list[WorkflowSampler]) -> None:
    with pytest.raises(DeclarationError, match="at least one"):
        lightkeeper.instrument_workflow(engine)
    with pytest.raises(ValueError, match="interval_seconds"):
        lightkeeper.instrument_workflow(engine, entities=[ITEMS], interval_seconds=0.1)
    with pytest.raises(ValueError, match="timeout_seconds"):
        lightkeeper.instrument_workflow(engine, entities=[ITEMS], interval_seconds=5, timeout_seconds=10)
    with pytest.raises(TypeError, match="Entity"):
        lightkeeper.instrument_workflow(engine, entities=["items"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="Engine"):
        lightkeeper.instrument_workflow(object(), entities=[ITEMS])  # type: ignore[arg-type]
    with pytest.raises(DeclarationError, match="more than once"):
        lightkeeper.instrument_workflow(engine, entities=[ITEMS], aggregates=[Aggregate("items", "SELECT 1")])

    first = start(samplers, engine, entities=[ITEMS], background=False)
    with pytest.raises(DeclarationError, match="sampled already"):
        lightkeeper.instrument_workflow(engine, entities=[ITEMS], background=False)
    first.stop()
    start(samplers, engine, entities=[ITEMS], background=False)  # free again once stopped


class _Base(DeclarativeBase):
    pass


class Phase(enum.Enum):
    RUNNING = "running"
    DONE = "done"


class Job(_Base):
    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[Phase] = mapped_column(
        sa.Enum(Phase, native_enum=False, values_callable=lambda e: [m.value for m in e])
    )
    changed_at: Mapped[datetime] = mapped_column(sa.DateTime)


def test_a_model_with_an_enum_column_counts_values_its_enum_lacks(
    engine: sa.Engine, samplers: list[WorkflowSampler]
) -> None:
    _Base.metadata.create_all(engine)
    old = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
    with engine.begin() as conn:  # written by a newer release of the code, or by hand
        conn.exec_driver_sql(
            "INSERT INTO jobs (status, changed_at) VALUES ('running', ?), ('done', ?), ('retrying', ?)",
            (old, old, old),
        )
    jobs = Entity(Job, processing=["running"], terminal=["done"], age_column="changed_at")
    sampler = start(samplers, engine, entities=[jobs], background=False)

    assert sampler.sample_once() is True
    assert [gauge("workflow_entities", entity="jobs", status=s) for s in ("running", "done", "other")] == [
        1,
        1,
        1,
    ]
    assert gauge("workflow_stuck_entities", entity="jobs", status="running", threshold="30m") == 1
