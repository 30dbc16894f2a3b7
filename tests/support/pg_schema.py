"""A private PostgreSQL schema per test: the server suites run on the real local
PostgreSQL without seeing each other's rows or leaving tables behind."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, text

from lightkeeper.server.store.db import make_engine

PG_URL = os.environ.get("LIGHTKEEPER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextmanager
def private_schema(prefix: str, url: str = PG_URL, **engine_options: Any) -> Iterator[Engine]:
    """An engine whose search_path is a fresh, empty schema, dropped afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"}, **engine_options)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
