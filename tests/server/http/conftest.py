"""An app over a fresh store per test, with a fixed clock and a known admin token.

The store is a SQLite file and, as a second run of every store-backed test, a private
schema on the local PostgreSQL (created and dropped per test, so parallel runs never see
each other's rows). The slow tests (browser, fuzz, speed, processes) use `sqlite_engine`
only: they check the HTTP surface, not the backend, and would double the suite's time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from lightkeeper.server.config import ServerConfig
from lightkeeper.server.http import auth
from lightkeeper.server.http.app import create_app
from lightkeeper.server.store.db import make_engine, upgrade
from lightkeeper.spec.server import ServerSection
from tests.support.pg_schema import private_schema

TOKEN = "test-admin-token-0123456789"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _ready(engine: Engine) -> Engine:
    upgrade(engine)
    auth.ensure_admin_token(engine, TOKEN)
    return engine


@pytest.fixture
def pg_blank_engine() -> Iterator[Engine]:
    """An empty private schema on the local PostgreSQL, dropped after the test."""
    with private_schema("lk_http") as engine:
        yield engine


@pytest.fixture(params=["sqlite", "postgresql"])
def blank_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on an empty store (no tables yet), once per backend."""
    if request.param == "postgresql":
        yield request.getfixturevalue("pg_blank_engine")
        return
    made = make_engine(f"sqlite:///{tmp_path / 'server.db'}")
    yield made
    made.dispose()


@pytest.fixture
def engine(blank_engine: Engine) -> Engine:
    """A migrated store holding the test admin token, once per backend."""
    return _ready(blank_engine)


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite store, for the slow tests that run on one backend only."""
    made = _ready(make_engine(f"sqlite:///{tmp_path / 'server.db'}"))
    yield made
    made.dispose()


@dataclass
class Harness:
    engine: Engine
    make: Callable[..., TestClient]


@pytest.fixture
def harness(engine: Engine) -> Iterator[Harness]:
    clients: list[TestClient] = []

    def make(now: datetime = NOW, **section: object) -> TestClient:
        config = ServerConfig(admin_token=SecretStr(TOKEN), server=ServerSection.model_validate(section))
        client = TestClient(create_app(config, engine, clock=lambda: now, instrument=False))
        clients.append(client)
        return client

    yield Harness(engine, make)
    for client in clients:
        client.close()


@pytest.fixture
def client(harness: Harness) -> TestClient:
    return harness.make()


ADMIN = {"Authorization": f"Bearer {TOKEN}"}
