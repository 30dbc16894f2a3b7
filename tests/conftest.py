"""Shared fixtures: real services, ports, and a clean metric slate per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import services


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test (URL without a driver suffix)."""
    with services.temporary_database() as url:
        yield url


@pytest.fixture
def redis_url() -> str:
    return f"redis://{services.REDIS_HOST}:{services.REDIS_PORT}/0"
