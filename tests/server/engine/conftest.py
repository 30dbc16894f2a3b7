"""Fixtures for the engine tests: a fresh store on SQLite (tmp file) and on the local PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from lightkeeper.server.store.db import make_engine
from lightkeeper.server.store.tables import metadata
from tests.support.pg_schema import private_schema


def sqlite_store(folder: Path) -> Engine:
    engine = make_engine(f"sqlite:///{folder / 'lightkeeper.db'}")
    metadata.create_all(engine)
    return engine


@pytest.fixture
def pg_store() -> Iterator[Engine]:
    """A private schema per test, dropped afterwards, so parallel runs never see each other's rows."""
    with private_schema("lk_engine", pool_size=10) as engine:
        metadata.create_all(engine)
        yield engine


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = sqlite_store(tmp_path)
        yield engine
        engine.dispose()
    else:
        yield request.getfixturevalue("pg_store")
