"""DORA's rates as the server exposes them: over the trailing 30 days, per env and component."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from lightkeeper import catalogue
from lightkeeper.server.deploys import metrics, store

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _deploy(status: str, days_ago: float, component: str = "api") -> store.Deployment:
    end = NOW - timedelta(days=days_ago)
    return store.Deployment("prod", component, "1.0", status, end - timedelta(minutes=5), end, None)


class _Fixed(Collector):
    def __init__(self, rows: list[store.Deployment]) -> None:
        self.rows = rows

    def collect(self):  # type: ignore[no-untyped-def]
        return metrics.families(self.rows, now=NOW)


def _registry(rows: list[store.Deployment]) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(_Fixed(rows))
    return registry


def _values(rows: list[store.Deployment]) -> dict[tuple[str, str], float]:
    page = generate_latest(_registry(rows)).decode()
    return {
        (sample.name, sample.labels["component"]): sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
    }


def test_frequency_change_failure_and_rollback_rates_over_the_trailing_window() -> None:
    rows = [
        _deploy("success", 1),
        _deploy("success", 10),
        _deploy("failure", 20),
        _deploy("rolled_back", 29),
        _deploy("failure", 45),  # outside the 30 days: counted in deployments_total only
        _deploy("success", 60, component="worker"),  # nothing recent: no rate at all
        store.Deployment("prod", "api", "1.1", store.IN_PROGRESS, NOW, None, None),  # not finished
    ]
    got = _values(rows)
    assert got[(catalogue.DEPLOYMENTS_PER_DAY.name, "api")] == 2 / 30  # successful ones, as the API
    assert got[(catalogue.DEPLOYMENT_CHANGE_FAILURE_RATIO.name, "api")] == 2 / 4
    assert got[(catalogue.DEPLOYMENT_ROLLBACK_RATIO.name, "api")] == 1 / 4
    for family in (
        catalogue.DEPLOYMENTS_PER_DAY,
        catalogue.DEPLOYMENT_CHANGE_FAILURE_RATIO,
        catalogue.DEPLOYMENT_ROLLBACK_RATIO,
    ):
        assert (family.name, "worker") not in got  # never a made-up 0 or a division by zero
    totals = {
        sample.labels["status"]: sample.value
        for family in text_string_to_metric_families(generate_latest(_registry(rows)).decode())
        for sample in family.samples
        if sample.name == "deployments_total" and sample.labels["component"] == "api"
    }
    assert totals == {"success": 2, "failure": 2, "rolled_back": 1}  # the counter keeps every one
