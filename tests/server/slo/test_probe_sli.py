"""Probe SLIs: budgets from the server's own probe history, time-weighted like `/sla/uptime`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from lightkeeper.server.config import ServerConfig
from lightkeeper.server.http.app import create_app
from lightkeeper.server.slo.scraper import Scraper
from lightkeeper.server.store.tables import maintenance, probes, state_changes
from lightkeeper.spec.models import Spec
from lightkeeper.stack.generate import render_all

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
H = 3600.0


def spec(**extra: Any) -> Spec:
    return Spec.model_validate(
        {
            "service": "tiny",
            "environments": {"prod": {"targets": ["127.0.0.1:9"]}},
            "probes": [{"name": "api", "type": "http", "target": "http://127.0.0.1:9/health"}],
            "slos": [{"name": "api-uptime", "objective": 99.0, "sli": {"kind": "probe", "probe": "api"}}],
            **extra,
        }
    )


def history(engine: Engine, changes: list[tuple[timedelta, str]]) -> None:
    with engine.begin() as conn:
        conn.execute(
            probes.insert(),
            [
                {
                    "name": "api",
                    "source": "spec",
                    "config": {"type": "http"},
                    "created_at": NOW - timedelta(days=40),
                    "updated_at": NOW - timedelta(days=40),
                }
            ],
        )
        conn.execute(
            state_changes.insert(), [{"probe": "api", "at": NOW - ago, "state": s} for ago, s in changes]
        )


# up for the last 10 days, down 30 min two hours ago and 5 min twenty minutes ago
CHANGES = [
    (timedelta(days=10), "up"),
    (timedelta(hours=2), "down"),
    (timedelta(hours=1, minutes=30), "up"),
    (timedelta(minutes=20), "down"),
    (timedelta(minutes=15), "up"),
]


def status(engine: Engine, s: Spec) -> dict[str, Any]:
    app = create_app(ServerConfig(spec=s), engine, clock=lambda: NOW, instrument=False)
    with TestClient(app) as client:
        response = client.get("/sla/status")
    assert response.status_code == 200
    (state,) = response.json()["slos"]
    return dict(state)


def test_probe_sli_is_down_time_over_measured_time_in_every_window(engine: Engine) -> None:
    history(engine, CHANGES)
    state = status(engine, spec())
    measured, down = 10 * 86400.0, 35 * 60.0  # nothing was measured before the first result
    ratio = down / measured
    assert state["kind"] == "probe" and state["source"] == "probe" and state["no_data"] is False
    assert state["good_events"] == pytest.approx(measured - down)
    assert state["total_events"] == pytest.approx(measured)
    assert state["sli_percent"] == pytest.approx(100 * (1 - ratio))
    assert state["error_budget_minutes"] == pytest.approx(432.0)  # 1 % of 30 days
    assert state["error_budget_remaining_ratio"] == pytest.approx(1 - ratio / 0.01)
    assert state["error_budget_remaining_minutes"] == pytest.approx(432.0 * (1 - ratio / 0.01))
    assert state["as_of"] == "2026-12-01T12:00:00Z"
    expected = {
        "5m": 0.0,
        "30m": (300 / 1800) / 0.01,  # only the 5-minute outage
        "1h": (300 / H) / 0.01,
        "2h": (2100 / (2 * H)) / 0.01,  # both outages
        "6h": (2100 / (6 * H)) / 0.01,
        "1d": (2100 / 86400) / 0.01,
        "3d": (2100 / (3 * 86400)) / 0.01,
    }
    assert state["burn_rates"] == pytest.approx(expected)
    # burn rate over the period is ratio / budget; the remaining share lasts remaining x 30d / rate
    assert state["time_to_exhaustion_seconds"] == pytest.approx(
        (1 - ratio / 0.01) * 30 * 86400 / (ratio / 0.01)
    )


def test_maintenance_is_neither_good_nor_bad_time(engine: Engine) -> None:
    history(engine, CHANGES)
    with engine.begin() as conn:
        conn.execute(
            maintenance.insert(),
            [
                {
                    "title": "planned",
                    "probes": ["api"],
                    "starts_at": NOW - timedelta(minutes=20),
                    "ends_at": NOW - timedelta(minutes=15),
                }
            ],
        )
    state = status(engine, spec())
    assert state["burn_rates"]["30m"] == 0.0
    assert state["total_events"] == pytest.approx(10 * 86400.0 - 300)
    assert state["sli_percent"] == pytest.approx(100 * (1 - 1800 / (10 * 86400 - 300)))


def test_probe_without_history_is_no_data_not_nan(engine: Engine) -> None:
    state = status(engine, spec())
    assert state["no_data"] is True
    assert state["as_of"] is None
    assert state["sli_percent"] is None and state["error_budget_remaining_ratio"] is None
    assert state["error_budget_minutes"] == pytest.approx(432.0)
    assert all(v is None for v in state["burn_rates"].values())


def test_unknown_probe_is_a_located_spec_error() -> None:
    with pytest.raises(ValueError, match="uses probe 'nope'; define it under probes"):
        Spec.model_validate(
            {
                "service": "tiny",
                "environments": {"prod": {"targets": ["127.0.0.1:9"]}},
                "slos": [{"name": "x", "objective": 99.0, "sli": {"kind": "probe", "probe": "nope"}}],
            }
        )


def test_generator_writes_nothing_for_probe_slis() -> None:
    metric = {"name": "api-availability", "objective": 99.5, "sli": {"kind": "availability"}}
    both = spec(
        slos=[metric, {"name": "api-uptime", "objective": 99.0, "sli": {"kind": "probe", "probe": "api"}}]
    )
    only_metric = spec(slos=[metric])
    files = render_all(both, "test")
    assert files == render_all(only_metric, "test")
    assert not any("api-uptime" in text or "ApiUptime" in text for text in files.values())


def test_embedded_scraper_looks_for_no_series_of_a_probe_sli(engine: Engine) -> None:
    metric = {"name": "api-availability", "objective": 99.5, "sli": {"kind": "availability"}}
    both = spec(
        slos=[metric, {"name": "api-uptime", "objective": 99.0, "sli": {"kind": "probe", "probe": "api"}}]
    )
    scraper = Scraper(engine, both, "prod", httpx.AsyncClient())
    assert [s.slo for s in scraper.selections] == ["api-availability"]
