"""A migrated store on SQLite (a tmp file) and on the local PostgreSQL (a schema per test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from lightkeeper.server.http import auth
from lightkeeper.server.store.db import make_engine, upgrade
from tests.support.pg_schema import private_schema

TOKEN = "deploy-admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """Built by the migrations (not `create_all`), so the new revision is what is tested."""
    if request.param == "sqlite":
        made = make_engine(f"sqlite:///{tmp_path / 'server.db'}")
        upgrade(made)
        auth.ensure_admin_token(made, TOKEN)
        yield made
        made.dispose()
        return
    with private_schema("lk_deploys") as made:
        upgrade(made)
        auth.ensure_admin_token(made, TOKEN)
        yield made
