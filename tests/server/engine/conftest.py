"""Fixtures for the engine tests: a fresh store on SQLite (tmp file) and on the local PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from lightkeeper.server.store.db import make_engine
from lightkeeper.server.store.tables import metadata

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def sqlite_store(folder: Path) -> Engine:
    engine = make_engine(f"sqlite:///{folder / 'lightkeeper.db'}")
    metadata.create_all(engine)
    return engine


@pytest.fixture
def pg_store() -> Iterator[Engine]:
    """A private schema per test, dropped afterwards, so parallel runs never see each other's rows."""
    schema = f"lk_engine_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"}, pool_size=10)
    metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = sqlite_store(tmp_path)
        yield engine
        engine.dispose()
    else:
        yield request.getfixturevalue("pg_store")
