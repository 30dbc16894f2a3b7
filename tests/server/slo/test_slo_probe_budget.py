"""Probe SLIs get a history, a monthly report and burn-rate alerts, all from the probe's up and down time.

The probe histories are constructed state changes whose answers are worked out by
hand: minutes of down time over measured minutes, the same time-weighting as
`/sla/uptime` and the probe SLO's `/sla/status` entry.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select

from lightkeeper.cli.budget import render
from lightkeeper.server.config import ServerConfig
from lightkeeper.server.http.app import create_app
from lightkeeper.server.slo import alerting
from lightkeeper.server.store.tables import incidents, outbox, probes, state_changes
from lightkeeper.spec.models import Spec

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
MIN = 60.0


def spec(objective: float = 99.5, **server: Any) -> Spec:
    return Spec.model_validate(
        {
            "service": "tiny",
            "environments": {"prod": {"targets": ["127.0.0.1:9"]}},
            "probes": [{"name": "api", "type": "http", "target": "http://127.0.0.1:9/health"}],
            "slos": [
                {"name": "api-uptime", "objective": objective, "sli": {"kind": "probe", "probe": "api"}},
                {"name": "api-availability", "objective": 99.5, "sli": {"kind": "availability"}},
            ],
            "server": server,
        }
    )


def record(engine: Engine, changes: list[tuple[datetime, str]]) -> None:
    with engine.begin() as conn:
        if conn.execute(select(probes.c.name)).first() is None:
            made = NOW - timedelta(days=60)
            conn.execute(
                insert(probes),
                [
                    {
                        "name": "api",
                        "source": "spec",
                        "config": {"type": "http"},
                        "created_at": made,
                        "updated_at": made,
                    }
                ],
            )
        conn.execute(insert(state_changes), [{"probe": "api", "at": at, "state": s} for at, s in changes])


def client(engine: Engine, s: Spec, now: datetime = NOW) -> TestClient:
    return TestClient(create_app(ServerConfig(spec=s), engine, clock=lambda: now, instrument=False))


# Watched from 21 Nov 12:00; down for an hour on 25 Nov, 35 minutes on 1 Dec before noon.
HISTORY = [
    (datetime(2026, 11, 21, 12, tzinfo=UTC), "up"),
    (datetime(2026, 11, 25, 3, tzinfo=UTC), "down"),
    (datetime(2026, 11, 25, 4, tzinfo=UTC), "up"),
    (NOW - timedelta(hours=2), "down"),
    (NOW - timedelta(hours=1, minutes=30), "up"),
    (NOW - timedelta(minutes=20), "down"),
    (NOW - timedelta(minutes=15), "up"),
]


def test_history_is_the_period_budget_at_each_day_end(engine: Engine) -> None:
    record(engine, HISTORY)
    s = spec()
    with client(engine, s) as c:
        days = c.get("/api/slo/api-uptime/history", params={"days": 12}).json()["days"]
        status = {x["name"]: x for x in c.get("/sla/status").json()["slos"]}
    assert [d["day"] for d in days][:2] == ["2026-11-20", "2026-11-21"]
    assert days[-1]["day"] == "2026-12-01"
    assert days[0]["no_data"] is True and days[0]["error_budget_remaining_ratio"] is None
    budget = 0.005 * 30 * 1440  # 216 minutes over 30 days

    def remaining(down: float, measured: float) -> float:
        return 1 - (down / measured) / 0.005

    # 21 Nov: 12 h up, nothing down; 24 Nov: 3.5 days, no outage yet; 25 Nov: the hour is in
    assert days[1]["error_budget_remaining_ratio"] == pytest.approx(1.0)
    assert days[4]["error_budget_remaining_ratio"] == pytest.approx(1.0)
    assert days[5]["error_budget_remaining_ratio"] == pytest.approx(remaining(60, 4.5 * 1440))
    assert days[10]["error_budget_remaining_minutes"] == pytest.approx(remaining(60, 9.5 * 1440) * budget)
    # today ends now, and is exactly what /sla/status reports
    today = remaining(95, 10 * 1440)
    assert days[11]["error_budget_remaining_ratio"] == pytest.approx(today)
    assert status["api-uptime"]["error_budget_remaining_ratio"] == pytest.approx(today)


def test_history_of_a_probe_without_results_is_no_data(engine: Engine) -> None:
    with client(engine, spec()) as c:
        days = c.get("/api/slo/api-uptime/history", params={"days": 3}).json()["days"]
    assert [d["no_data"] for d in days] == [True, True, True]


def test_monthly_report_counts_down_minutes_per_week_and_only_its_probes_incidents(engine: Engine) -> None:
    record(
        engine,
        [
            (datetime(2026, 11, 1, tzinfo=UTC), "up"),
            (datetime(2026, 11, 10, 9, tzinfo=UTC), "down"),  # W46: 60 min
            (datetime(2026, 11, 10, 10, tzinfo=UTC), "up"),
            (datetime(2026, 11, 17, 9, tzinfo=UTC), "down"),  # W47: 300 min, past the 216-minute budget
            (datetime(2026, 11, 17, 14, tzinfo=UTC), "up"),
        ],
    )
    with engine.begin() as conn:
        conn.execute(
            insert(incidents),
            [
                {
                    "probe": "api",
                    "started_at": datetime(2026, 11, 10, 9, tzinfo=UTC),
                    "resolved_at": datetime(2026, 11, 10, 10, tzinfo=UTC),
                    "cause": "HTTP 503",
                },
                {
                    "probe": "db",
                    "started_at": datetime(2026, 11, 10, 9, tzinfo=UTC),
                    "resolved_at": None,
                    "cause": "timeout",
                },
            ],
        )
    with client(engine, spec()) as c:
        rep = c.get("/api/slo/api-uptime/report", params={"month": "2026-11"}).json()
    # measured all month (43,200 min), so a week spends exactly its down minutes
    assert rep["error_budget_minutes"] == pytest.approx(216.0)
    assert [w["budget_used_minutes"] for w in rep["weeks"]] == pytest.approx([0, 0, 60, 300, 0, 0])
    assert [w["budget_remaining_minutes"] for w in rep["weeks"]] == pytest.approx(
        [216, 216, 156, -144, -144, -144]
    )
    assert sum(w["total_events"] for w in rep["weeks"]) == pytest.approx(30 * 86400)
    assert rep["sli_percent"] == pytest.approx(100 * (1 - 360 / 43200))
    assert rep["verdict"] == "budget exhausted on 2026-11-17"
    assert [[i["probe"] for i in w["incidents"]] for w in rep["weeks"]] == [[], [], ["api"], [], [], []]
    assert "| 2026-W47 (2026-11-16..2026-11-22) | 300.0 | -144.0 | - |" in render([rep], "md")


def test_report_of_an_unwatched_month_is_no_data(engine: Engine) -> None:
    record(engine, HISTORY)
    with client(engine, spec()) as c:
        rep = c.get("/api/slo/api-uptime/report", params={"month": "2026-10"}).json()
    assert rep["no_data"] is True and rep["verdict"] == "no data"
    assert all(w["budget_used_minutes"] == 0 for w in rep["weeks"])


def _rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(p) for (p,) in conn.execute(select(outbox.c.payload).order_by(outbox.c.id))]


def _step_every_minute(alerter: alerting.Alerter, start: int, stop: int) -> dict[int, int]:
    return {t: alerter.step(NOW + timedelta(seconds=t)) for t in range(start, stop, 60)}


def test_probe_outage_fires_and_resolves_page_fast_once(engine: Engine) -> None:
    """Down from NOW for 15 minutes after ten days up, objective 99 % (page-fast threshold 14.4 %).

    The 1h window passes 14.4 % after 518.4 s (first step 540 s), `for: 2m` fires it at
    660 s; back up at 900 s, the 5m window falls to 14.4 % at 1156.8 s (step 1200 s).
    """
    record(engine, [(NOW - timedelta(days=10), "up"), (NOW, "down")])
    s = spec(objective=99.0)
    alerter = alerting.Alerter(engine, s, "prod")
    written = _step_every_minute(alerter, 0, 900)
    record(engine, [(NOW + timedelta(seconds=900), "up")])
    written |= _step_every_minute(alerter, 900, 1320)
    assert {t: n for t, n in written.items() if n} == {660: 1, 1200: 1}
    fired, resolved = _rows(engine)
    assert fired["status"] == "firing" and resolved["status"] == "resolved"
    assert fired["tier"] == resolved["tier"] == "page-fast"
    assert fired["labels"] == {
        "alertname": "ApiUptimeErrorBudgetBurn",
        "category": "slo",
        "severity": "critical",
        "service": "tiny",
        "environment": "prod",
        "slo": "api-uptime",
        "long_window": "1h",
        "short_window": "5m",
    }
    assert fired["started_at"] == resolved["started_at"] == "2026-12-01T12:11:00+00:00"
    assert resolved["resolved_at"] == "2026-12-01T12:20:00+00:00"


def test_status_reports_a_firing_probe_tier(engine: Engine) -> None:
    record(engine, [(NOW - timedelta(days=10), "up"), (NOW, "down")])
    s = spec(objective=99.0)
    _step_every_minute(alerting.Alerter(engine, s, "prod"), 0, 700)
    with client(engine, s, NOW + timedelta(seconds=700)) as c:
        found = {x["name"]: x for x in c.get("/sla/status").json()["slos"]}
    assert found["api-uptime"]["firing"] == ["page-fast"]
    assert found["api-availability"]["firing"] == []


def test_a_healthy_probe_never_alerts(engine: Engine) -> None:
    record(engine, [(NOW - timedelta(days=10), "up")])
    alerter = alerting.Alerter(engine, spec(objective=99.0), "prod")
    assert sum(_step_every_minute(alerter, 0, 600).values()) == 0
    assert _rows(engine) == []


def test_with_prometheus_the_server_alerts_only_on_probe_slis(engine: Engine) -> None:
    """Prometheus alerts on metric SLOs: the server writes none, and resolves one it left firing."""
    from lightkeeper.server.slo import samples
    from tests.support import services

    record(engine, [(NOW - timedelta(days=10), "up"), (NOW, "down")])
    for i in range(13):  # all-bad traffic: embedded mode pages on api-availability within 3 minutes
        samples.append(
            engine, "api-availability", "a:1", samples.Sample(NOW + timedelta(seconds=15 * i), 0, 10 * i)
        )
    metric_only = spec().model_copy(update={"slos": spec().slos[1:]})
    embedded = alerting.Alerter(engine, metric_only, "prod")
    for i in range(13):
        embedded.step(NOW + timedelta(seconds=15 * i))
    assert alerting.firing(engine) == {"api-availability": ["page-fast"]}
    before = len(_rows(engine))

    remote = spec(objective=99.0, prometheus_url=f"http://127.0.0.1:{services.closed_port()}")
    alerter = alerting.Alerter(engine, remote, "prod")
    assert [s.name for s in alerter.slos] == ["api-uptime"]
    _step_every_minute(alerter, 180, 720)
    new = _rows(engine)[before:]
    assert [(r["slo"], r["tier"], r["status"]) for r in new] == [
        ("api-availability", "page-fast", "resolved"),  # handed over to Prometheus, once
        ("api-uptime", "page-fast", "firing"),
    ]
    with client(engine, remote, NOW + timedelta(seconds=720)) as c:
        found = {x["name"]: x for x in c.get("/sla/status").json()["slos"]}
    # Prometheus is unreachable: its SLO has no data and nothing firing, the probe SLO is the server's
    assert found["api-availability"]["firing"] == [] and found["api-availability"]["no_data"] is True
    assert found["api-uptime"]["firing"] == ["page-fast"]
