"""Engines for SQLite (the default, one file in WAL mode) and PostgreSQL, and migrations.

`lightkeeper server` with no arguments must work in the current folder, so the default
URL is a SQLite file there. PostgreSQL is chosen by URL (`--db` or `LIGHTKEEPER_DB_URL`).
"""

from __future__ import annotations

import os
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

DEFAULT_URL = "sqlite:///./lightkeeper.db"
ENV_URL = "LIGHTKEEPER_DB_URL"
BUSY_TIMEOUT_MS = 10_000


def resolve_url(url: str | None) -> str:
    """The URL to use: the argument, else the environment, else the file in this folder.

    `postgresql://` and `postgres://` mean the psycopg 3 driver, the only one installed
    by the `server` extra.
    """
    chosen = url or os.environ.get(ENV_URL) or DEFAULT_URL
    for prefix in ("postgres://", "postgresql://"):
        if chosen.startswith(prefix):
            return "postgresql+psycopg://" + chosen[len(prefix) :]
    return chosen


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """A sync engine; every SQLite connection is put in WAL mode with a busy timeout.

    WAL lets the status page read while the writer commits; `synchronous=NORMAL` is
    durable across process crashes (the case `kill -9` tests), and only an OS crash can
    lose the last transactions. Foreign keys are switched on so a future constraint means
    the same on both backends.
    """
    resolved = make_url(resolve_url(url))
    if resolved.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(resolved, **kwargs)
    engine = create_engine(resolved, **kwargs)
    event.listen(engine, "connect", _configure_sqlite)
    return engine


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def alembic_config(engine: Engine) -> Config:
    """An Alembic configuration built in code: the migrations ship inside the package."""
    config = Config()
    location = resources.files("lightkeeper.server.store") / "migrations"
    config.set_main_option("script_location", str(location))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (idempotent: an up-to-date database is left alone)."""
    command.upgrade(alembic_config(engine), revision)
