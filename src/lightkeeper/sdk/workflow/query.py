"""One query per entity, shaped by the table's indexes, and the folding of its rows.

A sample needs exact counts per status, so some part of it reads every row: the cheapest
reading is an index-only scan of an index that starts with the status column. When the
table has one, the query walks it status by status (a recursive "loose index scan" finds
the distinct values in a few index descents, then one index-only count per value), and,
with the age column second in that index, each stuck count reads only the rows older
than its threshold (disjoint bands between consecutive thresholds, summed here) and the
oldest age is one descent. Without such an index the same numbers come from one grouped
scan of the table, since per-value lookups would each scan it again. Measured in
bench/workflow_sampler.py, where the README's numbers come from.

Everything the rows say is then folded into the declared label values (unknown statuses
into `other`), so what a table holds can never grow the number of series.
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


@dataclass(frozen=True)
class Source:
    """An entity's table and which query shape its indexes make cheap (found once)."""

    table: sa.Table
    status_indexed: bool = False  # a full (not partial) index starts with the status column
    age_indexed: bool = False  # ... and has the age column second


def resolve(connection: sa.Connection, entity: Entity) -> Source:
    """The entity's table, and whether its indexes serve per-status lookups."""
    table = resolve_table(connection, entity)
    leading = _index_prefixes(connection, table)
    status, age = table.c[entity.status_column].name, table.c[entity.age_column].name
    return Source(
        table,
        status_indexed=any(columns[:1] == (status,) for columns in leading),
        age_indexed=any(columns[:2] == (status, age) for columns in leading),
    )


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


def _index_prefixes(connection: sa.Connection, table: sa.Table) -> list[tuple[str | None, ...]]:
    """Column lists of the table's indexes in the database (a model may not declare them all).

    Partial indexes are left out: one that skips finished rows cannot count them.
    """
    found = sa.inspect(connection).get_indexes(table.name, schema=table.schema)
    return [
        tuple(index["column_names"])
        for index in found
        if not any(
            key.endswith("_where") and value is not None
            for key, value in index.get("dialect_options", {}).items()
        )
    ]


def entity_query(entity: Entity, source: Source) -> sa.CompoundSelect[Any]:
    """(status, count, NULL...) per status, then (status, NULL, oldest, bands...) per processing status.

    Band i counts the rows older than threshold i but not older than threshold i + 1
    (the last band: older than the longest threshold); `fold` sums them into stuck counts.
    The thresholds' cut-off times are bound parameters (`cutoffs` gives their values), so
    one statement serves every sample: building and compiling it again each time cost
    more than the index reads of a small table.
    """
    table = source.table
    # Read as plain text: a model's Enum column would refuse a value its Python enum lacks,
    # and a status the code does not know yet is exactly what `other` is there to count.
    status = sa.type_coerce(table.c[entity.status_column], sa.String())
    age = table.c[entity.age_column]
    bounds = [sa.bindparam(_cutoff_name(i), type_=age.type) for i in range(len(entity.thresholds))]
    if source.status_indexed:
        counts = _counts_by_walking(table, status, age, len(bounds))
    else:
        counts = [_count_by_scanning(table, status, age, len(bounds))]
    if source.age_indexed:
        ages = _ages_by_ranges(entity, table, status, age, bounds)
    else:
        ages = [_ages_by_scanning(entity, table, status, age, bounds)]
    return sa.union_all(*counts, *ages)


def cutoffs(entity: Entity, source: Source, now: datetime) -> dict[str, datetime]:
    """Values of `entity_query`'s parameters: the cut-off time per threshold at `now`."""
    age = source.table.c[entity.age_column]
    aware = bool(getattr(age.type, "timezone", False))
    values = {}
    for i, (_, seconds) in enumerate(entity.thresholds):
        cutoff = now - timedelta(seconds=seconds)
        values[_cutoff_name(i)] = cutoff if aware else cutoff.replace(tzinfo=None)
    return values


def _cutoff_name(i: int) -> str:
    return f"lk_cutoff_{i}"


def _bands(age: Any, bounds: Sequence[Any]) -> list[sa.ColumnElement[bool]]:
    """Conditions of the disjoint age bands between consecutive thresholds (latest cut-off first)."""
    older: list[Any] = [*bounds[1:], None]
    return [
        sa.and_(age < hi, *(() if lo is None else (age >= lo,))) for hi, lo in zip(bounds, older, strict=True)
    ]


def _no_ages(age: Any, thresholds: int) -> list[Any]:
    """Typed NULLs for the oldest-age and band columns of a count row."""
    return [sa.cast(sa.null(), age.type), *(sa.cast(sa.null(), sa.BigInteger) for _ in range(thresholds))]


def _counts_by_walking(table: sa.Table, status: Any, age: Any, thresholds: int) -> list[sa.Select[Any]]:
    """Distinct statuses by a recursive loose index scan, then one index-only count each."""
    first = sa.select(status).where(status.is_not(None)).order_by(status).limit(1).scalar_subquery()
    found = sa.select(first.label("status")).cte("lk_statuses", recursive=True)
    following = sa.select(status).where(status > found.c.status).order_by(status).limit(1).scalar_subquery()
    found = found.union_all(sa.select(following).where(found.c.status.is_not(None)))
    count = sa.select(sa.func.count()).select_from(table).where(status == found.c.status).scalar_subquery()
    empty = _no_ages(age, thresholds)
    walked = sa.select(found.c.status, count, *empty).where(found.c.status.is_not(None))
    # NULL is no value the walk can step on; its rows still count (as `other`).
    unset = sa.select(sa.cast(sa.null(), sa.String), sa.func.count(), *empty).select_from(table)
    return [walked, unset.where(status.is_(None))]


def _ages_by_ranges(
    entity: Entity, table: sa.Table, status: Any, age: Any, bounds: Sequence[Any]
) -> list[sa.Select[Any]]:
    """Per processing status: the oldest age in one descent, each band as one index range."""
    rows = []
    for value in entity.processing:
        here = status == value
        oldest = sa.select(age).where(here, age.is_not(None)).order_by(age).limit(1).scalar_subquery()
        bands = [
            sa.select(sa.func.count()).select_from(table).where(here, band).scalar_subquery()
            for band in _bands(age, bounds)
        ]
        rows.append(
            sa.select(sa.literal(value, sa.String), sa.cast(sa.null(), sa.BigInteger), oldest, *bands)
        )
    return rows


def _count_by_scanning(table: sa.Table, status: Any, age: Any, thresholds: int) -> sa.Select[Any]:
    """The counts as one grouped pass over the table."""
    return sa.select(status, sa.func.count(), *_no_ages(age, thresholds)).select_from(table).group_by(status)


def _ages_by_scanning(
    entity: Entity, table: sa.Table, status: Any, age: Any, bounds: Sequence[Any]
) -> sa.Select[Any]:
    """The oldest age and the bands as one grouped pass over the processing rows."""
    bands = [sa.func.count(sa.case((band, 1))) for band in _bands(age, bounds)]
    return (
        sa.select(status, sa.cast(sa.null(), sa.BigInteger), sa.func.min(age), *bands)
        .select_from(table)
        .where(status.in_(entity.processing))
        .group_by(status)
    )


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
        bands = [int(n or 0) for n in row[3 : 3 + len(thresholds)]]
        for i, (label, _) in enumerate(thresholds):
            stuck[(status, label)] += sum(bands[i:])  # older than threshold i: its band and all older
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
            # Both settings in one round trip (on a busy host each one waits for a CPU);
            # `true` scopes them to this transaction, like SET LOCAL.
            connection.execute(
                sa.text(
                    "SELECT set_config('transaction_read_only', 'on', true), "
                    "set_config('statement_timeout', :ms, true)"
                ),
                {"ms": str(max(1, int(timeout_seconds * 1000)))},
            )
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
