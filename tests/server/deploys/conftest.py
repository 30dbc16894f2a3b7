"""A migrated store on SQLite (a tmp file) and on the local PostgreSQL (a schema per test)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from lightkeeper.server.http import auth
from lightkeeper.server.store.db import make_engine, upgrade

PG_URL = os.environ.get("LIGHTKEEPER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
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
    schema = f"lk_deploys_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    made = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        upgrade(made)
        auth.ensure_admin_token(made, TOKEN)
        yield made
    finally:
        made.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
