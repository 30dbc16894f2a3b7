"""The status page, day-incident pages, badges, the feed, maintenance and `/metrics`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from prometheus_client.registry import REGISTRY

from tests.server.http import seed
from tests.server.http.conftest import ADMIN, NOW, Harness

DAY = 86400


def _history(harness: Harness) -> None:
    engine = harness.engine
    seed.probe(engine, "web", component="Website")
    seed.probe(engine, "db", kind="tcp", target="db:5432", component="Database")
    seed.state(engine, "web", "up", at=NOW)
    seed.state(engine, "db", "down", at=NOW, error="connection refused")
    seed.full_days(engine, "web", datetime(2026, 11, 1, tzinfo=UTC), 20)
    seed.full_days(engine, "db", datetime(2026, 11, 1, tzinfo=UTC), 19)
    # today comes from raw state changes: up for 6 h, then down for 6 h until NOW
    seed.change(engine, "db", datetime(2026, 11, 20, tzinfo=UTC), "up")
    seed.change(engine, "db", datetime(2026, 11, 20, 6, tzinfo=UTC), "down")
    seed.incident(engine, "db", NOW - timedelta(hours=2), None, cause="connection refused")
    seed.incident(
        engine,
        "web",
        datetime(2026, 11, 5, 10, tzinfo=UTC),
        datetime(2026, 11, 5, 10, 20, tzinfo=UTC),
        cause="expected status 200, got 503",
    )


def test_status_page_shows_components_bars_and_incidents(harness: Harness) -> None:
    _history(harness)
    page = harness.make(status_page_days=30).get("/")
    assert page.status_code == 200
    html = page.text
    assert "Some systems are down" in html
    assert html.count('class="bar ') == 60  # 30 days x 2 components
    assert "2026-11-20: 50.00% available, 1 incident" in html
    assert "2026-11-19: 100.00% available" in html
    assert "2026-10-22: no data" in html
    assert '<a href="/incidents?day=2026-11-05">' in html
    assert "Current incidents" in html and "Database: outage" in html
    assert "Website: outage, resolved" in html
    assert "expected status 200, got 503" in html
    assert re.search(r"<h3>Database</h3>\s*<p class=\"state state-down\">", html)


def test_day_length_and_empty_server(harness: Harness) -> None:
    client = harness.make(status_page_days=7)
    assert "No probes are configured yet." in client.get("/").text
    seed.probe(harness.engine, "web")
    # the rendered page is kept a few seconds; a change written behind the app's back
    # shows after that, an admin change at once
    assert "No probes are configured yet." in client.get("/").text
    assert harness.make(status_page_days=7).get("/").text.count('class="bar ') == 7
    assert client.delete("/api/maintenance/999", headers=ADMIN).status_code == 404
    assert client.get("/").text.count('class="bar ') == 7


def test_day_page_lists_that_days_incidents(harness: Harness) -> None:
    _history(harness)
    client = harness.make()
    html = client.get("/incidents", params={"day": "2026-11-05"}).text
    assert "Incidents on 2026-11-05" in html and "expected status 200, got 503" in html
    assert "No incidents on this day." in client.get("/incidents", params={"day": "2026-11-06"}).text
    assert client.get("/incidents", params={"day": "soon"}).status_code == 422
    # the last representable day has no end to query up to: was a 500
    assert client.get("/incidents", params={"day": "9999-12-31"}).status_code == 422
    assert client.get("/incidents", params={"day": "9999-12-30"}).status_code == 200


def test_page_escapes_text_from_the_store(harness: Harness) -> None:
    seed.probe(harness.engine, "web", component="<script>alert(1)</script>")
    seed.incident(
        harness.engine, "web", NOW - timedelta(minutes=5), None, cause="<img src=x onerror=alert(1)>"
    )
    html = harness.make().get("/").text
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html


def test_badge_feed_and_static(harness: Harness) -> None:
    _history(harness)
    client = harness.make()
    badge = client.get("/badge/db.svg")
    assert badge.headers["content-type"] == "image/svg+xml"
    assert 'aria-label="Database: down"' in badge.text
    assert client.get("/badge/nope.svg").status_code == 404
    feed = client.get("/feed.json")
    assert feed.headers["content-type"].startswith("application/feed+json")
    items = feed.json()["items"]
    assert [i["title"] for i in items] == ["Database: outage (ongoing)", "Website: outage (resolved)"]
    assert client.get("/static/status.css").status_code == 200


def test_maintenance_is_created_listed_and_deleted(harness: Harness) -> None:
    seed.probe(harness.engine, "web")
    client = harness.make()
    window = {
        "title": "Database upgrade",
        "probes": ["web"],
        "starts_at": "2026-11-20T14:00:00Z",
        "ends_at": "2026-11-20T15:00:00Z",
    }
    created = client.post("/api/maintenance", json=window, headers=ADMIN)
    assert created.status_code == 201
    assert "Database upgrade" in client.get("/").text
    weekly = {
        "title": "Sunday patching",
        "starts_at": "2026-11-01T00:00:00Z",
        "cron": "0 3 * * 0",
        "duration_seconds": 3600,
        "timezone": "Europe/Berlin",
    }
    assert client.post("/api/maintenance", json=weekly, headers=ADMIN).status_code == 201
    assert "Sunday patching" in client.get("/").text
    assert client.delete(f"/api/maintenance/{created.json()['id']}", headers=ADMIN).status_code == 204
    assert "Database upgrade" not in client.get("/").text
    assert client.delete(f"/api/maintenance/{created.json()['id']}", headers=ADMIN).status_code == 404


def test_bad_maintenance_is_422(harness: Harness) -> None:
    seed.probe(harness.engine, "web")
    client = harness.make()
    base = {"title": "x", "starts_at": "2026-11-20T14:00:00Z", "ends_at": "2026-11-20T15:00:00Z"}
    bad = [
        {**base, "ends_at": "2026-11-20T13:00:00Z"},
        {**base, "starts_at": "2026-11-20T14:00:00"},
        {**base, "title": ""},
        {**base, "probes": ["missing"]},
        {**base, "cron": "every sunday", "duration_seconds": 600},
        {k: v for k, v in base.items() if k != "ends_at"},
        {**base, "timezone": "Mars/Olympus"},
        {**base, "title": "t" * 500},
    ]
    for body in bad:
        assert client.post("/api/maintenance", json=body, headers=ADMIN).status_code == 422, body
    assert client.delete("/api/maintenance/abc", headers=ADMIN).status_code == 422


def test_metrics_expose_probe_state_incidents_and_outbox(harness: Harness) -> None:
    _history(harness)
    seed.state(harness.engine, "web", "up", at=NOW, latency_ms=250, tls_expiry=86400 * 30)
    harness.make()
    text = generate_latest(REGISTRY).decode()
    assert 'probe_success{probe="web"} 1.0' in text
    assert 'probe_success{probe="db"} 0.0' in text
    assert 'probe_duration_seconds{probe="web"} 0.25' in text
    assert 'probe_tls_expiry_seconds{probe="web"} 2.592e+06' in text
    assert "lightkeeper_incidents_open 1.0" in text
    assert "lightkeeper_outbox_depth 0.0" in text


def test_openapi_describes_the_contract(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/probes",
        "/api/probes/{name}",
        "/api/incidents",
        "/sla/uptime",
        "/sla/status",
        "/api/report/sla",
        "/api/maintenance",
        "/api/maintenance/{window_id}",
        "/ping/{token}",
        "/badge/{probe}.svg",
        "/feed.json",
    ):
        assert path in paths, path
