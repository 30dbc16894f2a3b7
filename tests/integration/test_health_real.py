"""Health endpoints against the real PostgreSQL and Redis, and against broken ones,
served by a real uvicorn with default settings (plus a metrics token)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import services
from tests.support.services import uvicorn_process

APP = "tests.apps.core_app:app"
PG_PASSWORD = "Pg-Sup3r-S3cret-pw"
REDIS_PASSWORD = "Redis-S3cret-pw-42"
TOKEN = "health-and-metrics-token-5b2d"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
KUBELET_TIMEOUT = 1.0  # Kubernetes' default probe timeoutSeconds
CACHE = 1.0  # instrument()'s default health_cache_seconds


def pg_url(port: int) -> str:
    # trust auth: the password is ignored by the server but must never be shown
    return f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:{port}/test"


def redis_url(port: int) -> str:
    return f"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0"


def json_lines(log: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in log.read_text().splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


def test_healthy_dependencies_answer_200_and_only_the_token_sees_detail() -> None:
    env = {
        "CORE_PG_URL": pg_url(5432),
        "CORE_REDIS_URL": f"redis://127.0.0.1:{services.REDIS_PORT}/0",
        "LIGHTKEEPER_METRICS_TOKEN": TOKEN,
    }
    with uvicorn_process(APP, env=env) as (port, log):
        base = f"http://127.0.0.1:{port}"
        ready = httpx.get(f"{base}/health/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        anonymous = httpx.get(f"{base}/health", timeout=10).json()
        assert anonymous == {
            "status": "pass",
            "checks": {"postgres": {"status": "pass"}, "redis": {"status": "pass"}},
        }
        detail = httpx.get(f"{base}/health", headers=AUTH, timeout=10).json()
        assert detail["status"] == "pass"
        assert set(detail["checks"]) == {"postgres", "redis"}
        for result in detail["checks"].values():
            assert result["status"] == "pass" and result["latency_ms"] >= 0
        assert detail["service"] == "core" and detail["version"] == "9.9.9"
        metrics = httpx.get(f"{base}/metrics", headers=AUTH).text
        assert 'lightkeeper_health_check_up{check="postgres"} 1.0' in metrics
        assert PG_PASSWORD not in log.read_text()
        # healthy from the start: no state-change line
        assert not [x for x in json_lines(log) if x["event"].startswith("health_check_")]


@pytest.mark.parametrize("failure", ["refused", "hung"])
def test_broken_dependencies_answer_503_inside_the_kubelet_timeout_and_log_once(failure: str) -> None:
    with services.silent_listener() as hung_port:
        port = services.closed_port() if failure == "refused" else hung_port
        env = {
            "CORE_PG_URL": pg_url(port),
            "CORE_REDIS_URL": redis_url(port),
            "LIGHTKEEPER_METRICS_TOKEN": TOKEN,
        }
        with uvicorn_process(APP, env=env) as (app_port, log):
            base = f"http://127.0.0.1:{app_port}"
            start = time.monotonic()
            ready = httpx.get(f"{base}/health/ready", timeout=30)
            elapsed = time.monotonic() - start
            assert ready.status_code == 503
            assert elapsed < KUBELET_TIMEOUT, f"readiness took {elapsed:.2f}s"
            assert ready.json() == {
                "status": "fail",
                "checks": {"postgres": {"status": "fail"}, "redis": {"status": "fail"}},
            }
            live_start = time.monotonic()
            live = httpx.get(f"{base}/health/live", timeout=5)
            assert live.status_code == 200 and time.monotonic() - live_start < 0.5
            time.sleep(CACHE + 0.2)  # let the cache expire and run the checks again
            start = time.monotonic()
            detail = httpx.get(f"{base}/health", headers=AUTH, timeout=30)
            assert detail.status_code == 503 and time.monotonic() - start < KUBELET_TIMEOUT
            errors = [c["error"] for c in detail.json()["checks"].values()]
            if failure == "hung":
                assert all("timed out" in e for e in errors), errors
            else:
                assert all("refused" in e.lower() for e in errors), errors
            wrong = httpx.get(f"{base}/health", headers={"Authorization": "Bearer nope"}, timeout=30)
            assert wrong.status_code == 503 and "error" not in wrong.text and "9.9.9" not in wrong.text
            metrics = httpx.get(f"{base}/metrics", headers=AUTH).text
            time.sleep(0.2)  # log lines are written behind the request
            lines = json_lines(log)
            failed = [x for x in lines if x["event"] == "health_check_failed"]
            # two probe rounds, one state change per check: one line each
            assert sorted(x["check"] for x in failed) == ["postgres", "redis"], failed
            assert all(x["level"] == "warning" and x["reason"] for x in failed)
            everything = ready.text + detail.text + wrong.text + log.read_text() + metrics
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
