"""Prometheus mode: `/sla/status` from a real Prometheus running the generated rules equals embedded mode.

A tiny `/metrics` (prometheus_client in a thread) serves counters computed from one
tick count, so good and bad grow in a fixed proportion (0.5 % failed requests, 0.25 %
slower than 0.5 s). The real `prometheus` binary scrapes it every second with the
rules `lightkeeper generate --profile test` writes (every window divided by 60),
while the server's embedded scraper reads the same endpoint into SQLite. Both modes
must then report the same SLI, budget and burn rate in every window; in Prometheus
mode `firing` is the generated alerts' state in Prometheus.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from lightkeeper import slo_math
from lightkeeper.server.config import ServerConfig
from lightkeeper.server.http.app import create_app
from lightkeeper.server.slo.scraper import Scraper
from lightkeeper.spec.models import Spec
from lightkeeper.stack.generate import generate
from lightkeeper.stack.slo_rules import slo_error_ratio_record
from tests.support import services

TICKS_PER_SECOND = 20
GOOD, BAD = 199, 1  # availability: 0.5 % bad against 99 % -> half the budget left
FAST, SLOW = 399, 1  # latency: 0.25 % slower than 0.5 s against 99 % -> three quarters left


class Traffic(Collector):
    def __init__(self) -> None:
        self.started = time.monotonic()

    def collect(self) -> Iterable[Metric]:
        ticks = int((time.monotonic() - self.started) * TICKS_PER_SECOND)
        requests = CounterMetricFamily(
            "http_requests", "Requests.", labels=["method", "route", "status_code"]
        )
        requests.add_metric(["GET", "/items", "200"], GOOD * ticks)
        requests.add_metric(["GET", "/items", "500"], BAD * ticks)
        yield requests
        duration = HistogramMetricFamily(
            "http_request_duration_seconds", "Latency.", labels=["method", "route"]
        )
        duration.add_metric(
            ["GET", "/items"],
            buckets=[("0.5", FAST * ticks), ("+Inf", (FAST + SLOW) * ticks)],
            sum_value=0.1 * (FAST + SLOW) * ticks,
        )
        yield duration


@contextlib.contextmanager
def metrics_endpoint() -> Iterator[int]:
    registry = CollectorRegistry()
    registry.register(Traffic())
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield int(server.server_port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


prometheus = services.prometheus_server


def spec_for(target: str, **server: Any) -> Spec:
    return Spec.model_validate(
        {
            "service": "shop",
            "environments": {"test": {"targets": [target]}},
            "slos": [
                {"name": "availability", "objective": 99, "sli": {"kind": "availability"}},
                {"name": "latency", "objective": 99, "sli": {"kind": "latency", "threshold_seconds": 0.5}},
                # 0.5 % bad against 99.99 %: burn rate 50, so every tier's condition holds
                {"name": "strict", "objective": 99.99, "sli": {"kind": "availability"}},
            ],
            "server": server,
        }
    )


def slos(engine: Engine, spec: Spec) -> dict[str, dict[str, Any]]:
    app = create_app(ServerConfig(spec=spec), engine, clock=lambda: datetime.now(UTC), instrument=False)
    with TestClient(app) as client:
        response = client.get("/sla/status")
    assert response.status_code == 200, response.text
    return {s["name"]: s for s in response.json()["slos"]}


def scrape(engine: Engine, spec: Spec) -> None:
    async def once() -> None:
        async with httpx.AsyncClient() as client:
            assert await Scraper(engine, spec, "test", client).scrape_once() == 1

    asyncio.run(once())


NUMBERS = (
    "sli_percent",
    "error_budget_minutes",
    "error_budget_remaining_minutes",
    "error_budget_remaining_ratio",
)


def test_server_names_the_records_the_generator_writes() -> None:
    assert slo_error_ratio_record("1h12m") == f"{slo_math.ERROR_RATIO_RECORD_PREFIX}1h12m"


@pytest.mark.parametrize("blank_engine", ["sqlite"], indirect=True)
@pytest.mark.timeout(60)
def test_prometheus_mode_reports_what_embedded_mode_reports(engine: Engine, tmp_path: Path) -> None:
    began = time.monotonic()
    with metrics_endpoint() as port:
        embedded_spec = spec_for(f"127.0.0.1:{port}")
        out = tmp_path / "observability"
        generate(embedded_spec, out, "test")
        log = tmp_path / "prometheus.log"
        with prometheus(out / "prometheus" / "prometheus.yml", tmp_path / "tsdb", log) as url:
            remote_spec = spec_for(f"127.0.0.1:{port}", prometheus_url=url, prometheus_window_scale=60)
            deadline = time.monotonic() + 30
            while True:
                scrape(engine, embedded_spec)
                remote = slos(engine, remote_spec)
                ready = all(v is not None for s in remote.values() for v in s["burn_rates"].values())
                ready = ready and "page-fast" in remote["strict"]["firing"]  # its `for` is 2 s here
                if ready and not any(s["no_data"] for s in remote.values()):
                    break
                assert time.monotonic() < deadline, f"{remote}\n{log.read_text()[-3000:]}"
                time.sleep(1)
            scrape(engine, embedded_spec)
            local = slos(engine, embedded_spec)

    assert {s["source"] for s in remote.values()} == {"prometheus"}
    assert {s["source"] for s in local.values()} == {"embedded"}
    assert remote["availability"]["error_budget_remaining_ratio"] == pytest.approx(0.5, abs=1e-6)
    assert remote["latency"]["error_budget_remaining_ratio"] == pytest.approx(0.75, abs=1e-6)
    for name in ("availability", "latency", "strict"):
        mine, theirs = local[name], remote[name]
        assert theirs["no_data"] is mine["no_data"] is False, (name, mine)
        assert theirs["source_error"] is None
        for field in NUMBERS:
            assert theirs[field] == pytest.approx(mine[field], rel=1e-6), (name, field)
        assert theirs["burn_rates"] == pytest.approx(mine["burn_rates"], rel=1e-6)
        assert theirs["time_to_exhaustion_seconds"] == pytest.approx(
            mine["time_to_exhaustion_seconds"], rel=1e-6
        )
    assert remote["availability"]["burn_rates"]["5m"] == pytest.approx(0.5, rel=1e-6)
    # firing is Prometheus's ALERTS, named by tier; the slower tiers' `for` has not passed yet
    assert remote["availability"]["firing"] == remote["latency"]["firing"] == []
    assert remote["strict"]["firing"][0] == "page-fast"
    assert set(remote["strict"]["firing"]) <= {"page-fast", "page-slow"}
    assert local["strict"]["firing"] == []  # the embedded outbox is not consulted for it
    assert time.monotonic() - began < 45


@pytest.mark.parametrize("blank_engine", ["sqlite"], indirect=True)
def test_unreachable_prometheus_is_no_data_with_the_reason(engine: Engine) -> None:
    url = f"http://127.0.0.1:{services.closed_port()}"
    found = slos(engine, spec_for("127.0.0.1:9", prometheus_url=url))
    for state in found.values():
        assert state["no_data"] is True and state["sli_percent"] is None
        assert state["source"] == "prometheus"
        assert state["source_error"] == "Prometheus unreachable (ConnectError)"
        assert all(v is None for v in state["burn_rates"].values())


@pytest.mark.parametrize("blank_engine", ["sqlite"], indirect=True)
def test_hung_prometheus_is_cut_off_at_the_timeout(engine: Engine) -> None:
    with services.silent_listener() as port:
        spec = spec_for(
            "127.0.0.1:9", prometheus_url=f"http://127.0.0.1:{port}", prometheus_timeout_seconds=0.5
        )
        started = time.monotonic()
        found = slos(engine, spec)
        took = time.monotonic() - started
    assert took < 3
    assert {s["source_error"] for s in found.values()} == {"Prometheus unreachable (ReadTimeout)"}
    assert all(s["no_data"] for s in found.values())


@pytest.mark.parametrize("blank_engine", ["sqlite"], indirect=True)
def test_an_answer_that_is_not_a_query_result_is_no_data(engine: Engine) -> None:
    with metrics_endpoint() as port:  # serves metrics text on every path, not JSON
        found = slos(engine, spec_for("127.0.0.1:9", prometheus_url=f"http://127.0.0.1:{port}"))
    assert {s["source_error"] for s in found.values()} == {
        "Prometheus answered something other than a query result"
    }
    assert all(s["no_data"] for s in found.values())


def test_prometheus_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="prometheus_url 'prometheus:9090' must be an http"):
        spec_for("127.0.0.1:9", prometheus_url="prometheus:9090")
