"""The deployment collector lives in the process registry: a store it cannot read must cost
only its own families, never the scrape (or any other reader of the registry)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY, generate_latest

from lightkeeper import catalogue
from lightkeeper.server.deploys import metrics


@pytest.fixture
def collector() -> Iterator[metrics.DeploymentCollector]:
    installed = metrics._collector
    previous = installed.engine if installed is not None else None
    yield metrics.install(sa.create_engine("sqlite://"))  # replaced by each test
    if previous is not None:
        metrics.install(previous)


def test_an_unreadable_store_leaves_out_only_the_deployment_families(
    collector: metrics.DeploymentCollector, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    empty = sa.create_engine(f"sqlite:///{tmp_path / 'no-tables.db'}")  # no `deployments` table
    metrics.install(empty)
    page = generate_latest(REGISTRY).decode()  # raised OperationalError before
    assert catalogue.DEPLOYMENTS.name not in page
    assert "python_info" in page  # the rest of the process's metrics are still there
    assert "deployment metrics left out of this scrape: OperationalError" in caplog.text
    assert "no-tables.db" not in caplog.text  # the database URL stays out of the log
