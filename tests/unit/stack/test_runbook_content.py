"""runbook_content.yaml: a content file that would print a wrong runbook is refused."""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources

import pytest
import yaml

from lightkeeper.stack import panel_links, runbook_content


@cache
def _shipped() -> dict[str, object]:
    text = resources.files("lightkeeper.stack").joinpath(runbook_content.DATA_FILE).read_text("utf-8")
    found = yaml.safe_load(text)
    assert isinstance(found, dict)
    return found


def _data() -> dict[str, object]:
    """A private copy of the shipped content for one test to break."""
    return copy.deepcopy(_shipped())


def _load(data: dict[str, object]) -> runbook_content.Content:
    return runbook_content.load(json.dumps(data))  # JSON is YAML, and much faster to write


def test_the_shipped_file_loads() -> None:
    assert _load(_data()) == runbook_content.CONTENT


def _alert(data: dict[str, object], key: str) -> dict[str, object]:
    alerts = data["alerts"]
    assert isinstance(alerts, dict)
    entry = alerts[key]
    assert isinstance(entry, dict)
    return entry


def _category(data: dict[str, object], key: str) -> dict[str, object]:
    categories = data["categories"]
    assert isinstance(categories, dict)
    entry = categories[key]
    assert isinstance(entry, dict)
    return entry


def test_an_unknown_placeholder_is_refused() -> None:
    data = _data()
    _alert(data, "latency_p95_seconds")["traces"] = "duration > {threshold_seconds}s"
    with pytest.raises(ValueError, match="unknown placeholder threshold_seconds"):
        _load(data)


def test_a_silence_longer_than_a_day_is_refused() -> None:
    data = _data()
    _category(data, "cost")["silence"] = {"duration": "7d", "never": "x"}
    with pytest.raises(ValueError, match="at most 24h"):
        _load(data)


def test_means_must_be_one_sentence() -> None:
    data = _data()
    _alert(data, "error_rate")["means"] = "Requests fail. Users notice."
    with pytest.raises(ValueError, match="one sentence"):
        _load(data)


def test_every_category_must_be_described() -> None:
    data = _data()
    categories = data["categories"]
    assert isinstance(categories, dict)
    del categories["frontend"]
    with pytest.raises(ValueError, match="no category frontend"):
        _load(data)


def test_a_misspelt_field_is_refused() -> None:
    data = _data()
    _alert(data, "error_rate")["trace"] = "status = error"
    with pytest.raises(ValueError, match="trace"):
        _load(data)


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("SLOs & Error Budget (saas-api)", "slos-and-error-budget-saas-api"),
        ("API Performance (api)", "api-performance-api"),
        ("  Database & Queue (shop_v2) ", "database-and-queue-shop-v2"),
    ],
)
def test_grafana_slug(title: str, slug: str) -> None:
    assert panel_links.grafana_slug(title) == slug
