"""The server collector lives in the process registry: a store it cannot read must cost only
the families it reads from the store, never the scrape (nor any other reader of the registry).
A dropped test schema once failed every later test that rendered the registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY, generate_latest

from lightkeeper import catalogue
from lightkeeper.server.http import metrics


@pytest.fixture
def restore() -> Iterator[None]:
    installed = metrics._collector
    previous = installed.engine if installed is not None else None
    yield
    if installed is not None:
        installed.engine = previous


def test_an_unreadable_store_leaves_out_only_the_store_families(
    restore: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    empty = sa.create_engine(f"sqlite:///{tmp_path / 'no-tables.db'}")  # no `probes` table
    metrics.install(empty, scheduler_lag=lambda: 0.25)
    page = generate_latest(REGISTRY).decode()  # raised OperationalError before
    assert catalogue.PROBE_SUCCESS.name not in page
    assert catalogue.SERVER_OUTBOX_DEPTH.name not in page
    assert f"{catalogue.SERVER_SCHEDULER_LAG_SECONDS.name} 0.25" in page  # read from memory
    assert "python_info" in page
    assert "server metrics left out of this scrape: OperationalError" in caplog.text
    assert "no-tables.db" not in caplog.text
