"""One query per entity, its statement timeout, and the folding of its rows.

The query is one statement in two parts joined by UNION ALL: the row count per status
(`GROUP BY status`, the only part that reads the whole table), and, for processing
statuses only, the oldest age timestamp and one count per stuck threshold. With the
recommended index on `(status, age_column)` the second part reads just the processing
rows, so the per-row work on a table of mostly finished entities is a bare count
(half the time of computing ages over every row, measured in bench/workflow_sampler.py).
Everything the rows say is then folded into the declared label values (unknown
statuses into `other`), so what a table holds can never grow the number of series.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from lightkeeper import catalogue
from lightkeeper.sdk.workflow.declarations import Aggregate, Entity

# How often (in SQLite virtual-machine instructions) the timeout is checked: often
# enough to stop within milliseconds, rarely enough to cost nothing measurable.
_SQLITE_PROGRESS_STEPS = 10_000


class StatementTimeout(Exception):
    """A sampling query ran past its budget (raised where the database does not say so)."""


@dataclass(frozen=True)
class EntitySample:
    """What one entity's query found, already folded into declared label values."""

    counts: dict[str, int]
    stuck: dict[tuple[str, str], int]
    oldest_processing_age: float


def resolve_table(connection: sa.Connection, entity: Entity) -> sa.Table:
    """The entity's table with (at least) its status and age columns, reflected if named."""
    declared = getattr(entity.table, "__table__", entity.table)
    if isinstance(declared, sa.Table):
        table = declared
    else:
        schema, _, name = str(declared).rpartition(".")
        table = sa.Table(
            name,
            sa.MetaData(),
            schema=schema or None,
            autoload_with=connection,
            include_columns=[entity.status_column, entity.age_column],
        )
    for column in (entity.status_column, entity.age_column):
        if column not in table.c:
            raise sa.exc.NoSuchColumnError(f"{table.fullname} has no column {column!r}")
    return table


def entity_query(entity: Entity, table: sa.Table, now: datetime) -> sa.Executable:
    """(status, count, NULL...) per status, then (status, NULL, oldest, stuck...) per processing status."""
    # Read as plain text: a model's Enum column would refuse a value its Python enum lacks,
    # and a status the code does not know yet is exactly what `other` is there to count.
    status = sa.type_coerce(table.c[entity.status_column], sa.String())
    age = table.c[entity.age_column]
    aware = bool(getattr(age.type, "timezone", False))
    no_count = sa.cast(sa.null(), sa.BigInteger)
    counts = sa.select(
        status.label("status"),
        sa.func.count().label("n"),
        sa.cast(sa.null(), age.type).label("oldest"),
        *(no_count.label(f"stuck_{i}") for i in range(len(entity.thresholds))),
    ).group_by(status)
    stuck = []
    for i, (_, seconds) in enumerate(entity.thresholds):
        cutoff = now - timedelta(seconds=seconds)
        bound = cutoff if aware else cutoff.replace(tzinfo=None)
        stuck.append(sa.func.count(sa.case((age < bound, 1))).label(f"stuck_{i}"))
    ages = (
        sa.select(status, no_count, sa.func.min(age), *stuck)
        .where(status.in_(entity.processing))
        .group_by(status)
    )
    return sa.union_all(counts.select_from(table), ages.select_from(table))


def fold(entity: Entity, rows: Sequence[Any], now: datetime) -> EntitySample:
    """Rows of `entity_query` as bounded gauge values; declared statuses absent from the data are 0."""
    other = catalogue.WORKFLOW_OTHER_STATUS
    counts = dict.fromkeys((*entity.statuses, other), 0)
    thresholds = entity.thresholds
    stuck = {(s, label): 0 for s in entity.processing for label, _ in thresholds}
    oldest: datetime | None = None
    for row in rows:
        status = _status_text(row[0])
        if row[1] is not None:
            counts[status if status in counts else other] += int(row[1])
            continue
        if status not in entity.processing:
            continue
        for i, (label, _) in enumerate(thresholds):
            stuck[(status, label)] += int(row[3 + i] or 0)
        found = _as_utc(row[2])
        if found is not None and (oldest is None or found < oldest):
            oldest = found
    age = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
    return EntitySample(counts, stuck, age)


def aggregate_statement(aggregate: Aggregate) -> Any:
    return sa.text(aggregate.sql) if isinstance(aggregate.sql, str) else aggregate.sql


def aggregate_value(result: Any) -> float:
    """The one number an aggregate returns; NULL (an empty `sum`, say) reads as 0."""
    return 0.0 if result is None else float(result)


@contextlib.contextmanager
def guarded(connection: sa.Connection, timeout_seconds: float) -> Iterator[None]:
    """A read-only transaction whose statements stop after `timeout_seconds`.

    PostgreSQL enforces the limit itself (`SET LOCAL`, gone with the transaction, so the
    pooled connection keeps its settings); SQLite is interrupted from its progress
    handler. Other databases get no server-side limit: the sampler runs in its own
    thread, so a slow query there only makes the gauges stale, never a request slow.
    """
    dialect = connection.dialect.name
    with connection.begin():
        if dialect == "postgresql":
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            connection.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(timeout_seconds * 1000))}")
            yield
            return
        if dialect == "sqlite":
            raw = connection.connection.driver_connection
            deadline = time.monotonic() + timeout_seconds

            def over_budget() -> int:
                return 1 if time.monotonic() > deadline else 0

            raw.set_progress_handler(over_budget, _SQLITE_PROGRESS_STEPS)  # type: ignore[union-attr]
            try:
                yield
            finally:
                raw.set_progress_handler(None, 0)  # type: ignore[union-attr]
            return
        yield


def error_reason(exc: BaseException, connecting: bool) -> str:
    """One of catalogue.WORKFLOW_SAMPLE_ERROR_REASONS for a failed sample."""
    if isinstance(exc, StatementTimeout):
        return "timeout"
    orig = getattr(exc, "orig", None)
    sqlstate = str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")
    if sqlstate == "57014" or (
        isinstance(exc, sa.exc.OperationalError) and "interrupted" in str(orig).lower() and not sqlstate
    ):
        return "timeout"
    if (
        connecting
        or sqlstate.startswith("08")
        or isinstance(exc, sa.exc.DisconnectionError | sa.exc.TimeoutError)
    ):
        return "connection"
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return "connection"
    if isinstance(exc, sa.exc.SQLAlchemyError):
        return "query"
    return "other"


def error_text(exc: BaseException) -> str:
    """The database's own first line about the failure: never the statement or its parameters."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def _status_text(value: Any) -> str:
    return str(getattr(value, "value", value))  # a Python Enum column gives members


def _as_utc(value: Any) -> datetime | None:
    """Naive timestamps are read as UTC: what `datetime.utcnow()` and UTC servers store."""
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
