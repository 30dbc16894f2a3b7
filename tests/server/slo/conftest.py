"""Every SLO store test runs on SQLite and on the local PostgreSQL, migrated through the whole chain."""

from __future__ import annotations

from tests.server.store.conftest import blank_engine, engine, pg_database

__all__ = ["blank_engine", "engine", "pg_database"]
