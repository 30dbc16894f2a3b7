"""Embedded SLO scraping and evaluation against a real app under uvicorn, and the stored-sample math."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from lightkeeper.server.config import ServerConfig
from lightkeeper.server.http.app import create_app
from lightkeeper.server.slo import alerting, evaluate, samples
from lightkeeper.server.slo.scraper import Scraper
from lightkeeper.server.store.tables import outbox
from lightkeeper.spec.models import Spec
from tests.support import services

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def spec_for(target: str) -> Spec:
    return Spec.model_validate(
        {
            "service": "tiny",
            "environments": {"prod": {"targets": [target]}},
            "slos": [
                {"name": "api-availability", "objective": 99.5, "sli": {"kind": "availability"}},
                {
                    "name": "api-latency",
                    "objective": 99.0,
                    "sli": {"kind": "latency", "threshold_seconds": 1},
                },
            ],
        }
    )


def test_constructed_traffic_gives_exact_sli_and_budget(engine: Engine, tmp_path: Path) -> None:
    with services.uvicorn_process("tests.server.slo.tiny_app:app", log_path=tmp_path / "app.log") as (
        port,
        _,
    ):
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/ok").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        spec = spec_for(f"127.0.0.1:{port}")

        async def scrape(at: datetime) -> int:
            async with httpx.AsyncClient() as client:
                return await Scraper(engine, spec, "prod", client).scrape_once(at)

        assert asyncio.run(scrape(T0)) == 1
        with httpx.Client(base_url=base) as client:
            for _ in range(196):
                assert client.get("/ok").status_code == 200
            for _ in range(4):
                assert client.get("/fail").status_code == 503
        assert asyncio.run(scrape(T0 + timedelta(seconds=15))) == 1

    config = ServerConfig(spec=spec)
    with TestClient(
        create_app(config, engine, clock=lambda: T0 + timedelta(seconds=20), instrument=False)
    ) as c:
        slos = {s["name"]: s for s in c.get("/sla/status").json()["slos"]}
    avail = slos["api-availability"]
    # 196 good + 4 bad, plus the readiness /ok seen by the first scrape: increase() extrapolates a
    # counter back to zero, as Prometheus does, so that request is counted too (201 events, 4 bad)
    bad = 4 / 201
    assert avail["total_events"] == pytest.approx(201)
    assert avail["good_events"] == pytest.approx(197)
    assert avail["sli_percent"] == pytest.approx(100 * (1 - bad))
    assert avail["error_budget_minutes"] == pytest.approx(216.0)
    assert avail["error_budget_remaining_ratio"] == pytest.approx(1 - bad / 0.005)
    assert avail["error_budget_remaining_minutes"] == pytest.approx(216.0 * (1 - bad / 0.005))
    assert avail["no_data"] is False
    assert avail["burn_rates"]["5m"] == pytest.approx(bad / 0.005)
    assert slos["api-latency"]["sli_percent"] == pytest.approx(100.0)
    assert slos["api-latency"]["time_to_exhaustion_seconds"] is None


def _put(engine: Engine, target: str, at: datetime, good: float, total: float) -> None:
    for slo in ("api-availability", "api-latency"):
        samples.append(engine, slo, target, samples.Sample(at, good, total))


def test_counter_reset_and_scrape_gap_neither_lose_nor_invent_traffic(engine: Engine) -> None:
    spec = spec_for("a:1")
    slo = spec.slos[0]
    series = [
        (0, 0, 0),
        (15, 90, 100),
        (30, 0, 0),
        (45, 45, 50),
        (90, 90, 100),
    ]  # restart at 30 s, gap 45..90
    for seconds, good, total in series:
        _put(engine, "a:1", T0 + timedelta(seconds=seconds), good, total)
    state = evaluate.state(engine, slo, T0 + timedelta(minutes=5))
    assert state["total_events"] == pytest.approx(200)
    assert state["good_events"] == pytest.approx(180)
    assert state["sli_percent"] == pytest.approx(90.0)
    assert state["error_budget_remaining_ratio"] == pytest.approx(1 - 0.1 / 0.005)


def test_no_traffic_is_no_data_not_nan(engine: Engine) -> None:
    spec = spec_for("a:1")
    for seconds in (0, 15, 30):
        _put(engine, "a:1", T0 + timedelta(seconds=seconds), 0, 0)
    state = evaluate.state(engine, spec.slos[0], T0 + timedelta(minutes=1))
    assert state["no_data"] is True
    assert state["sli_percent"] is None
    assert all(v is None for v in state["burn_rates"].values())


def test_history_endpoint_and_unknown_slo(engine: Engine) -> None:
    spec = spec_for("a:1")
    _put(engine, "a:1", T0, 0, 0)
    _put(engine, "a:1", T0 + timedelta(hours=1), 999, 1000)
    now = T0 + timedelta(days=2)
    with TestClient(create_app(ServerConfig(spec=spec), engine, clock=lambda: now, instrument=False)) as c:
        body = c.get("/api/slo/api-availability/history?days=4").json()
        assert c.get("/api/slo/nope/history").status_code == 404
        assert c.get("/api/slo/api-availability/history?days=0").status_code == 422
        page = c.get("/slo")
    days = body["days"]
    assert [d["day"] for d in days] == ["2026-11-30", "2026-12-01", "2026-12-02", "2026-12-03"]
    assert days[0]["no_data"] is True
    assert all(d["error_budget_remaining_ratio"] == pytest.approx(1 - 0.001 / 0.005) for d in days[1:])
    assert page.status_code == 200 and "<svg" in page.text and "api-availability" in page.text


def test_alert_written_once_per_state_change(engine: Engine) -> None:
    spec = spec_for("a:1")
    alerter = alerting.Alerter(engine, spec, "prod")
    # all-bad traffic for 3 minutes: page-fast (for 2m) fires once, later steps write nothing
    for i in range(13):
        at = T0 + timedelta(seconds=15 * i)
        _put(engine, "a:1", at, 0, 10 * i)
        alerter.step(at)
    with engine.connect() as conn:
        rows = conn.execute(select(outbox.c.dedupe_key, outbox.c.payload)).all()
    fast = [r for r in rows if r.payload["tier"] == "page-fast"]
    assert len(fast) == 2  # one per SLO
    assert {r.payload["labels"]["alertname"] for r in fast} == {
        "ApiAvailabilityErrorBudgetBurn",
        "ApiLatencyErrorBudgetBurn",
    }
    assert "page-fast" in alerting.firing(engine)["api-availability"]
    # a second evaluation of the same moment writes nothing new
    alerter.step(T0 + timedelta(seconds=180))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(outbox)).scalar_one() == len(rows)
