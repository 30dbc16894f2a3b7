"""The few statements whose spelling differs between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Connection, Select, Table, literal_column
from sqlalchemy.dialects import postgresql, sqlite

Q = TypeVar("Q", bound=Select[Any])
_CHUNK = 200  # rows per statement: well inside SQLite's bound-parameter limit


def insert_ignore(conn: Connection, table: Table, rows: list[dict[str, Any]], key: list[str]) -> int:
    """Insert rows whose `key` is new and skip the rest; returns how many were inserted.

    Both backends spell it `ON CONFLICT DO NOTHING`, which keeps "create if missing"
    race-free when several replicas do it at once.
    """
    if not rows:
        return 0
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    inserted = 0
    # Counted from RETURNING, never from rowcount: psycopg reports -1 for these
    # inserts, and callers rely on the count to know whether they were the one that
    # created the row (e.g. "enqueue this alert once").
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        statement = (
            dialect.insert(table)
            .values(chunk)
            .on_conflict_do_nothing(index_elements=key)
            .returning(literal_column("1"))
        )
        inserted += len(conn.execute(statement).all())
    return inserted


def lock_rows(conn: Connection, query: Q, *, skip_locked: bool = False, of: Table | None = None) -> Q:
    """`FOR UPDATE [OF t] [SKIP LOCKED]` on PostgreSQL; SQLite has one writer, so nothing to add there."""
    if conn.dialect.name != "postgresql":
        return query
    return query.with_for_update(skip_locked=skip_locked, of=of)
