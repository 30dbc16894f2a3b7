"""`/sla/uptime`, `/sla/status`, `/api/report/sla` and `/api/incidents` on constructed histories.

Every expected number is worked out here from the seeded seconds, so a change in the
time-weighted math or the window tiling shows up as a wrong number, not a crash.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from lightkeeper.server.http.uptime import plan
from tests.server.http import seed
from tests.server.http.conftest import NOW, Harness

DAY = 86400


def test_window_tiling_uses_the_coarsest_buckets() -> None:
    start = datetime(2026, 11, 1, 22, 30, tzinfo=UTC)
    end = datetime(2026, 11, 4, 1, 15, tzinfo=UTC)
    assert plan(start, end) == [
        ("minute", start, datetime(2026, 11, 1, 23, tzinfo=UTC)),
        ("hour", datetime(2026, 11, 1, 23, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)),
        ("day", datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 4, tzinfo=UTC)),
        ("hour", datetime(2026, 11, 4, tzinfo=UTC), datetime(2026, 11, 4, 1, tzinfo=UTC)),
        ("minute", datetime(2026, 11, 4, 1, tzinfo=UTC), end),
    ]


def test_uptime_is_time_weighted_and_excludes_maintenance_and_no_data(harness: Harness) -> None:
    engine = harness.engine
    seed.probe(engine, "api")
    first = datetime(2026, 11, 10, tzinfo=UTC)
    # day 1: 1 h down; day 2: 2 h maintenance, 4 h no data; day 3: all up
    seed.rollup(
        engine,
        "api",
        "day",
        first,
        up=DAY - 3600,
        down=3600,
        checks=1440,
        failures=60,
        latencies=[10.0] * 90 + [100.0] * 10,
    )
    seed.rollup(
        engine,
        "api",
        "day",
        first + timedelta(days=1),
        up=DAY - 6 * 3600,
        maintenance=7200,
        no_data=4 * 3600,
        checks=1200,
    )
    seed.rollup(engine, "api", "day", first + timedelta(days=2), up=DAY, checks=1440)
    # days without a roll-up (and the window's edges) come from raw state changes
    seed.change(engine, "api", datetime(2026, 10, 1, tzinfo=UTC), "up")
    seed.change(engine, "api", datetime(2026, 11, 20, 11, 30, tzinfo=UTC), "down")
    seed.incident(engine, "api", first + timedelta(hours=3), first + timedelta(hours=4))
    seed.incident(engine, "api", datetime(2026, 11, 20, 11, 30, tzinfo=UTC), None)

    body = harness.make().get("/sla/uptime", params={"window": "30d"}).json()
    assert body["window"] == "30d"
    assert body["from"] == "2026-10-21T12:00:00Z"
    assert body["to"] == "2026-11-20T12:00:00Z"
    [api] = body["probes"]
    up = (DAY - 3600) + (DAY - 6 * 3600) + DAY + (27 * DAY - 1800)
    down = 3600 + 1800
    assert api["availability_percent"] == round(100 * up / (up + down), 4)
    assert api["downtime_seconds"] == down
    assert api["no_data_seconds"] == 4 * 3600
    assert api["maintenance_seconds"] == 7200
    assert api["incidents"] == 2
    assert api["longest_incident_seconds"] == 3600
    assert api["average_incident_seconds"] == (3600 + 1800) / 2
    assert api["latency_p50_ms"] == pytest.approx(10.0, rel=0.02)
    assert api["latency_p95_ms"] == pytest.approx(100.0, rel=0.02)
    assert api["latency_p99_ms"] == pytest.approx(100.0, rel=0.02)


def test_uptime_without_any_judged_time_is_null_not_100(harness: Harness) -> None:
    seed.probe(harness.engine, "quiet")
    [quiet] = harness.make().get("/sla/uptime", params={"window": "7d"}).json()["probes"]
    assert quiet["availability_percent"] is None
    assert quiet["no_data_seconds"] == 7 * DAY
    assert quiet["incidents"] == 0
    assert quiet["average_incident_seconds"] is None
    assert quiet["latency_p95_ms"] is None


def test_month_is_a_calendar_month_in_the_configured_zone(harness: Harness) -> None:
    seed.probe(harness.engine, "api")
    # Berlin's November starts at 2026-10-31T23:00Z: the probe went down at 22:30Z (October
    # there) and came back at 23:30Z, so November holds 30 minutes of that outage
    seed.change(harness.engine, "api", datetime(2026, 10, 1, tzinfo=UTC), "up")
    seed.change(harness.engine, "api", datetime(2026, 10, 31, 22, 30, tzinfo=UTC), "down")
    seed.change(harness.engine, "api", datetime(2026, 10, 31, 23, 30, tzinfo=UTC), "up")
    client = harness.make(timezone="Europe/Berlin")
    body = client.get("/sla/uptime", params={"month": "2026-11", "probe": "api"}).json()
    assert body["from"] == "2026-10-31T23:00:00Z"
    assert body["to"] == "2026-11-20T12:00:00Z"  # the month so far
    assert body["probes"][0]["downtime_seconds"] == 1800
    past = client.get("/sla/uptime", params={"month": "2026-10"}).json()
    assert past["to"] == "2026-10-31T23:00:00Z"
    assert past["probes"][0]["downtime_seconds"] == 1800


@pytest.mark.parametrize(
    "params",
    [
        {"window": "30m"},
        {"window": "401d"},
        {"window": "30"},
        {"window": "1y"},
        {"month": "2026-13"},
        {"month": "November"},
        {"month": "2027-01"},
        {"month": "9999-12"},  # its end is past datetime.max: was a 500
        {"month": "1969-12"},
        {"window": "1d", "month": "2026-11"},
    ],
)
def test_bad_windows_are_422_with_a_reason(client: TestClient, params: dict[str, str]) -> None:
    response = client.get("/sla/uptime", params=params)
    assert response.status_code == 422
    assert response.json()["detail"]


def test_unknown_probe_is_404(client: TestClient) -> None:
    assert client.get("/sla/uptime", params={"probe": "nope"}).status_code == 404


def test_sla_status_measures_this_month_against_the_spec(harness: Harness) -> None:
    seed.probe(harness.engine, "api")
    # November so far (19.5 days): 2 h down over the month
    seed.rollup(
        harness.engine,
        "api",
        "day",
        datetime(2026, 11, 2, tzinfo=UTC),
        up=DAY - 7200,
        down=7200,
        checks=1000,
        failures=20,
        latencies=[200.0] * 100,
    )
    seed.rollup(harness.engine, "api", "day", datetime(2026, 11, 3, tzinfo=UTC), up=DAY, checks=1000)
    client = harness.make(sla={"availability_percent": 99.5, "latency_p95_ms": 150, "error_rate_percent": 1})
    body = client.get("/sla/status").json()
    assert body["month"] == "2026-11"
    by_name = {c["name"]: c for c in body["commitments"]}
    availability = by_name["availability"]
    assert availability["target"] == 99.5
    assert availability["current"] == round(100 * (2 * DAY - 7200) / (2 * DAY), 4)
    assert availability["met"] is False  # 95.83 %
    # budget over 30 days at 99.5 %: 12 960 s; 7 200 s spent
    assert availability["downtime_allowed_seconds"] == 30 * DAY * 0.005 - 7200
    assert by_name["latency_p95"]["current"] == pytest.approx(200, rel=0.02)
    assert by_name["latency_p95"]["met"] is False
    assert by_name["error_rate"]["current"] == 1.0
    assert by_name["error_rate"]["met"] is False


def test_sla_report_per_component_with_credits(harness: Harness) -> None:
    engine = harness.engine
    seed.probe(engine, "web-a", component="Web")
    seed.probe(engine, "web-b", component="Web")
    seed.probe(engine, "db", kind="tcp", target="db:5432", component="Database")
    october = datetime(2026, 10, 1, tzinfo=UTC)
    seed.full_days(engine, "web-a", october, 31)
    seed.full_days(engine, "web-b", october, 31, down_per_day=1728)  # 98 % each day
    seed.full_days(engine, "db", october, 31, down_per_day=432)  # 99.5 % each day: the target, met
    client = harness.make(
        sla={"availability_percent": 99.5},
        credits=[{"below_percent": 99.5, "credit_percent": 10}, {"below_percent": 99, "credit_percent": 25}],
        credit_cap_percent=20,
    )
    body = client.get("/api/report/sla", params={"month": "2026-10"}).json()
    assert body["complete"] is True
    components = {c["component"]: c for c in body["components"]}
    assert components["Web"]["probes"] == ["web-a", "web-b"]
    assert components["Web"]["availability_percent"] == 99.0  # (100 + 98) / 2, pooled
    assert components["Web"]["credit_percent"] == 10  # 99.0 is not below 99
    assert components["Database"]["availability_percent"] == 99.5
    assert components["Database"]["met"] is True
    assert components["Database"]["credit_percent"] == 0
    assert client.get("/api/report/sla", params={"month": "2026-1"}).status_code == 422


def test_credit_cap_limits_the_highest_tier(harness: Harness) -> None:
    seed.probe(harness.engine, "api")
    seed.full_days(harness.engine, "api", datetime(2026, 10, 1, tzinfo=UTC), 31, down_per_day=8640)  # 90 %
    client = harness.make(
        credits=[{"below_percent": 99.5, "credit_percent": 10}, {"below_percent": 99, "credit_percent": 25}],
        credit_cap_percent=20,
    )
    [api] = client.get("/api/report/sla", params={"month": "2026-10"}).json()["components"]
    assert api["credit_percent"] == 20


def test_incidents_filter_by_probe_and_since(harness: Harness) -> None:
    engine = harness.engine
    old = seed.incident(
        engine, "api", NOW - timedelta(days=3), NOW - timedelta(days=3) + timedelta(minutes=5)
    )
    current = seed.incident(
        engine, "api", NOW - timedelta(minutes=10), None, cause='body does not contain "ok"'
    )
    other = seed.incident(engine, "db", NOW - timedelta(hours=1), NOW - timedelta(minutes=30))
    client = harness.make()
    assert [i["id"] for i in client.get("/api/incidents").json()] == [current, other, old]
    assert [i["id"] for i in client.get("/api/incidents", params={"probe": "api"}).json()] == [current, old]
    since = (NOW - timedelta(days=1)).isoformat()
    listed = client.get("/api/incidents", params={"since": since}).json()
    assert [i["id"] for i in listed] == [current, other]
    assert listed[0] == {
        "id": current,
        "probe": "api",
        "started_at": "2026-11-20T11:50:00Z",
        "resolved_at": None,
        "duration_seconds": 600.0,
        "cause": 'body does not contain "ok"',
    }
    assert listed[1]["duration_seconds"] == 1800.0
    assert client.get("/api/incidents", params={"since": "yesterday"}).status_code == 422
