"""A migrated store (through the real Alembic revisions) on SQLite and on the local PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from lightkeeper.server.store.db import make_engine, upgrade
from tests.support.pg_schema import private_schema


def event(n: int, **fields: Any) -> dict[str, Any]:
    """One cost event as the SDK serialises it (JSON field names are the contract)."""
    base: dict[str, Any] = {
        "event_id": f"evt{n:010d}",
        "timestamp": datetime(2026, 11, 3, 10, tzinfo=UTC).isoformat(),
        "provider": "openai",
        "model": "gpt-4o",
        "operation": "summarise",
        "status": "ok",
        "input_tokens": 1000,
        "output_tokens": 100,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "cost_usd": 0.5,
        "price_source": "genai-prices 0.2.3",
        "latency_seconds": 0.4,
        "user_hash": f"{n % 7:032x}",
        "workspace_id": "acme",
        "request_id": f"req{n}",
    }
    return base | fields


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'lightkeeper.db'}")
        upgrade(engine)
        yield engine
        engine.dispose()
        return
    with private_schema("lk_cost") as engine:
        upgrade(engine)
        yield engine
