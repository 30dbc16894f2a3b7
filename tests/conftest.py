"""Shared fixtures: real services, ports, and a clean metric slate per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import services

# The longest test files (minutes of real servers and promtool runs), started first: the
# xdist workers take whole files in collection order, so a long file collected last would
# run alone at the end while the other worker idles.
SLOW_FIRST = (
    "tests/integration/test_demo.py",
    "tests/integration/test_stack_e2e.py",
    "tests/integration/test_slo_equivalence.py",
    "tests/unit/stack/test_rule_tests.py",
    "tests/integration/test_multiworker.py",
    "tests/server/slo/test_example_app_sli.py",
    "tests/server/test_kill9.py",
    "tests/integration/test_stack_check.py",
    "tests/integration/test_tracing.py",
    "tests/integration/test_budget_prometheus.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(SLOW_FIRST)))  # stable


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test (URL without a driver suffix)."""
    with services.temporary_database() as url:
        yield url


@pytest.fixture
def redis_url() -> str:
    return f"redis://{services.REDIS_HOST}:{services.REDIS_PORT}/0"
