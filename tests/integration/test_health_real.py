"""Health endpoints against the real PostgreSQL and Redis, and against broken ones."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support import services
from tests.support.services import uvicorn_process

APP = "tests.apps.core_app:app"
PG_PASSWORD = "Pg-Sup3r-S3cret-pw"
REDIS_PASSWORD = "Redis-S3cret-pw-42"
TIMEOUT = 2.0  # instrument()'s default per-check timeout


def pg_url(port: int) -> str:
    # trust auth: the password is ignored by the server but must never be shown
    return f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:{port}/test"


def redis_url(port: int) -> str:
    return f"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0"


def test_healthy_dependencies_answer_200_with_per_check_detail() -> None:
    env = {"CORE_PG_URL": pg_url(5432), "CORE_REDIS_URL": f"redis://127.0.0.1:{services.REDIS_PORT}/0"}
    with uvicorn_process(APP, env=env) as (port, log):
        base = f"http://127.0.0.1:{port}"
        ready = httpx.get(f"{base}/health/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        detail = httpx.get(f"{base}/health", timeout=10).json()
        assert detail["status"] == "pass"
        assert set(detail["checks"]) == {"postgres", "redis"}
        for result in detail["checks"].values():
            assert result["status"] == "pass" and result["latency_ms"] >= 0
        assert detail["service"] == "core" and detail["version"] == "9.9.9"
        metrics = httpx.get(f"{base}/metrics").text
        assert 'lightkeeper_health_check_up{check="postgres"} 1.0' in metrics
        assert PG_PASSWORD not in log.read_text()


@pytest.mark.parametrize("failure", ["refused", "hung"])
def test_broken_dependencies_answer_503_within_the_timeout_without_leaking_passwords(failure: str) -> None:
    with services.silent_listener() as hung_port:
        port = services.closed_port() if failure == "refused" else hung_port
        env = {"CORE_PG_URL": pg_url(port), "CORE_REDIS_URL": redis_url(port)}
        with uvicorn_process(APP, env=env) as (app_port, log):
            base = f"http://127.0.0.1:{app_port}"
            start = time.monotonic()
            ready = httpx.get(f"{base}/health/ready", timeout=30)
            elapsed = time.monotonic() - start
            assert ready.status_code == 503
            assert elapsed < TIMEOUT + 0.5, f"readiness took {elapsed:.2f}s"
            body = ready.json()
            assert body["status"] == "fail"
            assert {c["status"] for c in body["checks"].values()} == {"fail"}
            if failure == "hung":
                assert all("timed out" in c["error"] for c in body["checks"].values()), body
            live_start = time.monotonic()
            live = httpx.get(f"{base}/health/live", timeout=5)
            assert live.status_code == 200 and time.monotonic() - live_start < 0.5
            time.sleep(TIMEOUT + 0.2)  # let the cache expire and run the checks again
            detail = httpx.get(f"{base}/health", timeout=30)
            assert detail.status_code == 503
            everything = ready.text + detail.text + log.read_text() + httpx.get(f"{base}/metrics").text
            assert PG_PASSWORD not in everything
            assert REDIS_PASSWORD not in everything


def test_a_probe_flood_runs_the_checks_once_per_cache_window() -> None:
    env = {"CORE_PG_URL": pg_url(5432)}
    with uvicorn_process(APP, env=env) as (port, _):
        base = f"http://127.0.0.1:{port}"
        httpx.get(f"{base}/health/ready", timeout=10)

        def runs() -> float:
            text = httpx.get(f"{base}/metrics").text
            line = next(
                x
                for x in text.splitlines()
                if x.startswith('lightkeeper_health_check_duration_seconds_count{check="postgres"}')
            )
            return float(line.split()[-1])

        first = runs()
        with httpx.Client(base_url=base) as client:
            for _ in range(100):
                assert client.get("/health/ready").status_code == 200
        # 100 probes in well under the 1 s cache window: at most a couple of real runs.
        assert runs() - first <= 2
