"""Readiness runner and health endpoints: state-change logs, the deadline, who sees detail.

Dependencies are real where one runs here: PostgreSQL through a closed port (refused)
and a local TCP server that accepts and never answers (hung).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import lightkeeper
from lightkeeper import health
from lightkeeper.sdk.health import HealthChecks
from lightkeeper.sdk.settings import load_settings
from lightkeeper.testing import capture_logs
from tests.support import services

PASSWORD = "Hunter2-Pg-S3cret-pw"
TOKEN = "metrics-token-8c1f2e"


class Switch:
    """A custom check whose dependency an operator takes down and brings back."""

    def __init__(self) -> None:
        self.up = True

    def __call__(self) -> bool:
        if not self.up:
            raise ConnectionError(f"could not connect to postgresql://app:{PASSWORD}@db.internal:5432/app")
        return True


def run(checks: HealthChecks) -> Any:
    return asyncio.run(checks.run())


def state_lines(logs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (line["event"], line["check"])
        for line in logs
        if line["event"] in {"health_check_failed", "health_check_recovered"}
    ]


# --- state changes are logged once each -------------------------------------------------


def test_each_state_change_is_logged_once_not_once_per_probe() -> None:
    switch = Switch()
    checks = HealthChecks([health.check(switch, name="db")], timeout=0.8, cache_seconds=0, deadline=0.9)
    with capture_logs() as logs:
        for up in [True, True, False, False, False, True, True, False]:
            switch.up = up
            run(checks)
    assert state_lines(logs) == [
        ("health_check_failed", "db"),
        ("health_check_recovered", "db"),
        ("health_check_failed", "db"),
    ]
    failed = next(line for line in logs if line["event"] == "health_check_failed")
    assert failed["level"] == "warning"
    assert "db.internal" in failed["reason"]  # the operator learns what failed ...
    assert PASSWORD not in json.dumps(logs)  # ... never the password
    recovered = next(line for line in logs if line["event"] == "health_check_recovered")
    assert recovered["failed_for_seconds"] >= 0


def test_a_check_healthy_from_the_start_logs_nothing_and_a_first_failure_logs_once() -> None:
    healthy = health.check(lambda: True, name="ok")
    broken = Switch()
    broken.up = False
    checks = HealthChecks([healthy, health.check(broken, name="down")], timeout=0.8, cache_seconds=0)
    with capture_logs() as logs:
        for _ in range(3):
            run(checks)
    assert state_lines(logs) == [("health_check_failed", "down")]
    assert next(x for x in logs if x["event"] == "health_check_failed")["previous_status"] == "unknown"


def test_cached_answers_log_nothing_new() -> None:
    switch = Switch()
    switch.up = False
    checks = HealthChecks([health.check(switch, name="db")], timeout=0.8, cache_seconds=60)
    with capture_logs() as logs:
        for _ in range(5):
            assert run(checks).status == "fail"
    assert state_lines(logs) == [("health_check_failed", "db")]


def test_a_refused_postgres_dsn_logs_its_reason_without_the_password() -> None:
    dsn = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{services.closed_port()}/test"
    checks = HealthChecks([health.postgres(dsn)], timeout=0.8, cache_seconds=0, deadline=0.9)
    with capture_logs() as logs:
        report = run(checks)
    assert report.status == "fail"
    (line,) = [x for x in logs if x["event"] == "health_check_failed"]
    assert line["check"] == "postgres" and "refused" in line["reason"].lower()
    assert PASSWORD not in json.dumps(logs) + json.dumps(report.as_dict())


# --- the deadline ------------------------------------------------------------------------


def test_default_settings_answer_a_hung_dependency_inside_one_second() -> None:
    settings = load_settings()
    assert settings.health_timeout_seconds <= settings.health_deadline_seconds < 1.0
    with services.silent_listener() as port:
        checks = HealthChecks(
            [health.redis(f"redis://:{PASSWORD}@127.0.0.1:{port}/0")],
            timeout=settings.health_timeout_seconds,
            cache_seconds=0,
            deadline=settings.health_deadline_seconds,
        )
        start = time.monotonic()
        with capture_logs():
            report = run(checks)
        elapsed = time.monotonic() - start
    assert elapsed < 1.0, f"readiness took {elapsed:.2f}s"
    assert report.status == "fail" and "timed out" in (report.checks[0].error or "")


def test_a_check_that_outlives_its_timeout_is_reported_at_the_deadline() -> None:
    async def stubborn() -> bool:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            await asyncio.sleep(1.5)  # unwinds slowly, keeping wait_for() waiting
        return True

    fast = health.check(lambda: True, name="fast")
    checks = HealthChecks([fast, health.check(stubborn)], timeout=0.3, cache_seconds=0, deadline=0.5)
    start = time.monotonic()
    with capture_logs():
        report = run(checks)
    elapsed = time.monotonic() - start
    assert elapsed < 1.0, f"deadline not kept: {elapsed:.2f}s"
    by_name = {c.name: c for c in report.checks}
    assert by_name["fast"].status == "pass"  # what is known is answered
    assert by_name["stubborn"].status == "fail"
    assert "readiness deadline" in (by_name["stubborn"].error or "")


def test_a_check_timeout_beyond_the_deadline_fails_at_start_up() -> None:
    slow = health.check(lambda: True, name="search", timeout=5)
    with pytest.raises(ValueError, match=r"search \(5s\).*health_deadline_seconds"):
        HealthChecks([slow], timeout=0.8, cache_seconds=1, deadline=0.9)


# --- who sees the detail ---------------------------------------------------------------


def make_app(**settings: Any) -> Starlette:
    async def home(_: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/", home)])
    broken = Switch()
    broken.up = False
    checks = [health.check(lambda: True, name="cache"), health.check(broken, name="db")]
    lightkeeper.instrument(app, service="svc", version="7.7.7", checks=checks, **settings)
    return app


def get(app: Starlette, path: str, headers: list[tuple[bytes, bytes]] | None = None) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get(path, headers=headers)

    return asyncio.run(go())


@pytest.fixture
def token_app() -> Iterator[Starlette]:
    with capture_logs():
        yield make_app(metrics_token=TOKEN)


def assert_status_only(response: httpx.Response) -> None:
    assert response.status_code == 503
    assert response.json() == {
        "status": "fail",
        "checks": {"cache": {"status": "pass"}, "db": {"status": "fail"}},
    }
    assert "db.internal" not in response.text and "7.7.7" not in response.text
    assert response.headers["vary"] == "authorization"


@pytest.mark.parametrize("path", ["/health", "/health/ready"])
def test_without_a_token_health_shows_status_only(token_app: Starlette, path: str) -> None:
    with capture_logs():
        assert_status_only(get(token_app, path))


@pytest.mark.parametrize(
    "authorization",
    [
        b"Bearer wrong-token",
        b"Bearer " + TOKEN.encode() + b"x",
        b"Bearer",
        b"Bearer ",
        b"Basic " + TOKEN.encode(),
        TOKEN.encode(),
        b"Bearer \xff\xfe\x00",
        b"",
    ],
)
@pytest.mark.parametrize("path", ["/health", "/health/ready"])
def test_a_wrong_or_malformed_authorization_shows_status_only(
    token_app: Starlette, path: str, authorization: bytes
) -> None:
    with capture_logs():
        assert_status_only(get(token_app, path, [(b"authorization", authorization)]))


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
def test_the_metrics_token_shows_the_detail(token_app: Starlette, scheme: str) -> None:
    with capture_logs():
        response = get(token_app, "/health", [(b"authorization", f"{scheme} {TOKEN}".encode())])
        ready = get(token_app, "/health/ready", [(b"authorization", f"{scheme} {TOKEN}".encode())])
    assert response.status_code == 503 and ready.status_code == 503
    body = response.json()
    assert body["service"] == "svc" and body["version"] == "7.7.7"
    assert "db.internal" in body["checks"]["db"]["error"]
    assert body["checks"]["cache"]["latency_ms"] >= 0
    assert "db.internal" in ready.json()["checks"]["db"]["error"]
    assert PASSWORD not in response.text + ready.text


def test_always_shows_detail_to_anyone_and_never_hides_it_from_the_token() -> None:
    with capture_logs():
        always = get(make_app(health_details="always"), "/health")
        hidden = get(
            make_app(health_details="never", metrics_token=TOKEN),
            "/health",
            [(b"authorization", f"Bearer {TOKEN}".encode())],
        )
    assert "db.internal" in always.json()["checks"]["db"]["error"]
    assert PASSWORD not in always.text
    assert_status_only(hidden)


def test_without_a_configured_token_no_header_unlocks_the_detail() -> None:
    with capture_logs():
        app = make_app()
        assert_status_only(get(app, "/health", [(b"authorization", b"Bearer ")]))
        assert_status_only(get(app, "/health", [(b"authorization", b"Bearer None")]))


def test_liveness_never_runs_the_checks() -> None:
    calls: list[int] = []

    def counted() -> bool:
        calls.append(1)
        return True

    app = Starlette()
    with capture_logs():
        lightkeeper.instrument(app, checks=[health.check(counted, name="counted")])
        for _ in range(3):
            assert get(app, "/health/live").status_code == 200
    assert calls == []


def test_the_metrics_token_still_guards_metrics(token_app: Starlette) -> None:
    with capture_logs():
        assert get(token_app, "/metrics").status_code == 401
        assert get(token_app, "/metrics", [(b"authorization", b"Bearer nope")]).status_code == 401
        assert get(token_app, "/metrics", [(b"authorization", b"Bearer \xff")]).status_code == 401
        assert get(token_app, "/metrics", [(b"authorization", f"Bearer {TOKEN}".encode())]).status_code == 200


def test_a_hung_sync_check_holds_one_thread_however_many_probes_arrive() -> None:
    release = threading.Event()

    def stuck() -> bool:
        release.wait(10)
        return True

    def threads() -> int:
        return sum(t.name == "lightkeeper-health-stuck" for t in threading.enumerate())

    checks = HealthChecks([health.check(stuck)], timeout=0.1, cache_seconds=0, deadline=0.2)
    try:
        with capture_logs():
            reports = [run(checks) for _ in range(4)]
        assert threads() == 1
        assert [r.checks[0].error for r in reports] == [
            "timed out after 0.1s",
            *["timed out: still running since an earlier probe"] * 3,
        ]
        assert all(t.daemon for t in threading.enumerate() if t.name == "lightkeeper-health-stuck")
    finally:
        release.set()
    deadline = time.monotonic() + 5
    while threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    with capture_logs():
        assert run(checks).status == "pass"  # the thread returned: the check runs again


def test_a_sync_check_that_raises_reports_the_redacted_error() -> None:
    switch = Switch()
    switch.up = False
    checks = HealthChecks([health.check(switch, name="db")], timeout=0.8, cache_seconds=0)
    with capture_logs():
        report = run(checks)
    (result,) = report.checks
    assert result.status == "fail" and result.error is not None
    assert result.error.startswith("ConnectionError: ") and PASSWORD not in result.error
