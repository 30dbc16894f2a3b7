"""Alembic environment: runs against the engine `db.upgrade` puts in the config, online only."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from lightkeeper.server.store.tables import metadata

engine = context.config.attributes["engine"]
assert isinstance(engine, Engine)

with engine.begin() as connection:
    # render_as_batch: SQLite cannot ALTER most things, so later revisions copy tables
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    context.run_migrations()
