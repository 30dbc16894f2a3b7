"""The few statements whose spelling differs between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Connection, Select, Table
from sqlalchemy.dialects import postgresql, sqlite

Q = TypeVar("Q", bound=Select[Any])


def insert_ignore(conn: Connection, table: Table, rows: list[dict[str, Any]], key: list[str]) -> int:
    """Insert rows whose `key` is new and skip the rest; returns how many were inserted.

    Both backends spell it `ON CONFLICT DO NOTHING`, which keeps "create if missing"
    race-free when several replicas do it at once.
    """
    if not rows:
        return 0
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).on_conflict_do_nothing(index_elements=key)
    return conn.execute(statement, rows).rowcount or 0


def lock_rows(conn: Connection, query: Q, *, skip_locked: bool = False, of: Table | None = None) -> Q:
    """`FOR UPDATE [OF t] [SKIP LOCKED]` on PostgreSQL; SQLite has one writer, so nothing to add there."""
    if conn.dialect.name != "postgresql":
        return query
    return query.with_for_update(skip_locked=skip_locked, of=of)
