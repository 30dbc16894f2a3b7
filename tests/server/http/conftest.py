"""An app over a fresh SQLite file per test, with a fixed clock and a known admin token."""

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

TOKEN = "test-admin-token-0123456789"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = make_engine(f"sqlite:///{tmp_path / 'server.db'}")
    upgrade(made)
    auth.ensure_admin_token(made, TOKEN)
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
