"""End to end: the generated stack, run by the real Prometheus and Alertmanager.

The example app (instrumented with `lightkeeper.instrument`) serves on 127.0.0.1 with
every /api/flaky call failing. Prometheus scrapes it every second with the rules of
`generate --profile test` (windows and `for:` 60x shorter, same thresholds), and
Alertmanager routes to a webhook receiver in this test. We check that the error-rate
and fast-burn SLO alerts reach the webhook with the right severity and runbook link,
resolve when the traffic stops without the slow page tier paging again for the same
burn, and that killing the app raises "service down" /
"telemetry missing". Everything is bounded by deadlines.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from lightkeeper.spec.loader import parse_spec
from lightkeeper.stack.generate import generate
from tests.support import services

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RUNBOOKS = "http://runbooks.test/saas-api"


class Webhook:
    """A local HTTP receiver collecting every alert Alertmanager posts."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                payload = json.loads(body)
                with hook.lock:
                    hook.alerts.extend(payload.get("alerts", []))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Webhook:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def find(self, name: str, status: str, **labels: str) -> dict[str, Any] | None:
        with self.lock:
            for alert in self.alerts:
                got = alert.get("labels", {})
                wanted = {"alertname": name, **labels}
                if alert.get("status") == status and all(got.get(k) == v for k, v in wanted.items()):
                    return alert
        return None


def wait_for(what: str, check: Callable[[], Any], timeout: float, diagnose: Callable[[], str]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{diagnose()}")


@contextlib.contextmanager
def process(cmd: list[str], log: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
        try:
            try:
                services.wait_for_port(port, timeout=30)
            except TimeoutError:
                proc.kill()
                raise RuntimeError(f"{cmd[0]} did not start:\n{log.read_text()[-3000:]}") from None
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def spec_text(app_port: int, am_port: int, hook_port: int) -> str:
    return f"""\
service: saas-api
environments:
  e2e: {{targets: ["127.0.0.1:{app_port}"]}}
slos:
  - {{name: availability, objective: 99.9, period: 30d, sli: {{kind: availability}}}}
alerts:
  # The test profile shortens the 5m window to 5s but keeps counts: 10 requests in 5s.
  error_rate: {{high: 0.05, critical: 0.5, min_requests: 10}}
routing:
  critical: [hook]
  high: [hook]
  medium: [hook]
  low: []
notification: {{group_wait: 1s, group_interval: 1s, repeat_interval: 1h}}
receivers:
  hook: {{webhook: {{url: "http://127.0.0.1:{hook_port}/alerts"}}}}
runbooks: {{base_url: "{RUNBOOKS}"}}
prometheus:
  alertmanagers: ["127.0.0.1:{am_port}"]
"""


def drive_failures(base: str, stop: threading.Event, sent: list[int]) -> None:
    """Log in once, then call the always-failing endpoint until told to stop (bounded)."""
    with httpx.Client(base_url=base, timeout=5) as client:
        token = client.post(
            "/api/auth/login", json={"email": "alice@example.com", "password": "demo-password"}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + 150
        while not stop.is_set() and time.monotonic() < deadline:
            response = client.get("/api/flaky", headers=headers)
            sent.append(response.status_code)
            time.sleep(0.02)


def start_app(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The example app under a real uvicorn; the caller kills it mid-test."""
    import os
    import sys

    port = services.free_port()
    full_env = {**os.environ, **env, "PYTHONPATH": str(services.ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "examples.saas_app.main:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
    ]
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=full_env, cwd=services.ROOT)
    try:
        services.wait_for_port(port, timeout=30)
    except TimeoutError:
        proc.kill()
        raise RuntimeError(f"the example app did not start:\n{log.read_text()[-3000:]}") from None
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


@pytest.mark.timeout(290)
def test_generated_stack_alerts_end_to_end(tmp_path: Path) -> None:
    am_port, prom_port = services.free_port(), services.free_port()
    app_env = {
        "SAAS_FLAKY_RATE": "1",
        "SAAS_DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "SAAS_ENVIRONMENT": "e2e",
    }
    with contextlib.ExitStack() as stack:
        hook = stack.enter_context(Webhook())
        app, app_port = start_app(app_env, tmp_path / "app.log")
        stack.callback(stop, app)
        out = tmp_path / "observability"
        generate(parse_spec(spec_text(app_port, am_port, hook.port)), out, profile="test")
        stack.enter_context(
            process(
                [
                    "prometheus-alertmanager",
                    f"--config.file={out / 'alertmanager' / 'alertmanager.yml'}",
                    f"--storage.path={tmp_path / 'am'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=",
                ],
                tmp_path / "am.log",
                am_port,
            )
        )
        stack.enter_context(
            process(
                [
                    "prometheus",
                    f"--config.file={out / 'prometheus' / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'prom'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                    "--rules.alert.resend-delay=1s",
                ],
                tmp_path / "prom.log",
                prom_port,
            )
        )
        prom_api = f"http://127.0.0.1:{prom_port}/api/v1"

        def diagnose() -> str:
            try:
                firing = httpx.get(f"{prom_api}/alerts", timeout=3).json()["data"]["alerts"]
                targets = httpx.get(f"{prom_api}/targets", timeout=3).json()["data"]["activeTargets"]
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                return f"prometheus unreachable: {exc}"
            states = [(a["labels"]["alertname"], a["labels"].get("severity"), a["state"]) for a in firing]
            health = [(t["scrapeUrl"], t["health"], t.get("lastError")) for t in targets]
            received = [
                (a["labels"].get("alertname"), a["labels"].get("severity"), a["status"]) for a in hook.alerts
            ]
            return f"prometheus alerts: {states}\ntargets: {health}\nwebhook got: {received}"

        # 1. Every request fails: the error-rate page and the fast-burn SLO page arrive.
        halt, sent = threading.Event(), []
        traffic = threading.Thread(
            target=drive_failures, args=(f"http://127.0.0.1:{app_port}", halt, sent), daemon=True
        )
        traffic.start()
        try:
            error_rate = wait_for(
                "HTTPErrorRateHigh (critical) at the webhook",
                lambda: hook.find("HTTPErrorRateHigh", "firing", severity="critical"),
                90,
                diagnose,
            )
            burn = wait_for(
                "the fast-burn AvailabilityErrorBudgetBurn page at the webhook",
                lambda: hook.find(
                    "AvailabilityErrorBudgetBurn", "firing", severity="critical", long_window="1m"
                ),
                60,
                diagnose,
            )
        finally:
            halt.set()
            traffic.join(timeout=10)
        assert sent and set(sent) == {500}, f"the flaky endpoint answered {sorted(set(sent))}"
        assert (error_rate["labels"]["service"], error_rate["labels"]["environment"]) == ("saas-api", "e2e")
        assert error_rate["annotations"]["runbook_url"] == f"{RUNBOOKS}/HTTPErrorRateHigh.md"
        panel_url = error_rate["annotations"]["dashboard_url"]  # Prometheus filled the environment in
        assert "/d/lk-saas-api-api-performance/" in panel_url
        assert "var-environment=e2e&viewPanel=" in panel_url
        assert burn["labels"]["slo"] == "availability" and burn["labels"]["short_window"] == "5s"
        assert burn["annotations"]["runbook_url"] == f"{RUNBOOKS}/AvailabilityErrorBudgetBurn.md"

        # 2. Traffic stops: every window's ratio becomes 0/0 and the alerts resolve. The slow
        # page tier saw the same burst and fires in Prometheus too, but the fast burn keeps
        # firing for the slow tier's short window (30s here), so Alertmanager inhibits it
        # until it clears: one page per burn.
        def slow_tier_firing_in_prometheus() -> bool:
            firing = httpx.get(f"{prom_api}/alerts", timeout=3).json()["data"]["alerts"]
            return any(
                a["labels"].get("long_window") == "6m" and a["state"] == "firing"
                for a in firing
                if a["labels"]["alertname"] == "AvailabilityErrorBudgetBurn"
            )

        wait_for("the slow page tier to fire in Prometheus", slow_tier_firing_in_prometheus, 45, diagnose)
        wait_for(
            "HTTPErrorRateHigh and the fast burn to resolve",
            lambda: (
                hook.find("HTTPErrorRateHigh", "resolved", severity="critical")
                and hook.find("AvailabilityErrorBudgetBurn", "resolved", long_window="1m")
            ),
            90,
            diagnose,
        )
        slow_page = hook.find("AvailabilityErrorBudgetBurn", "firing", long_window="6m")
        assert slow_page is None, f"the slow page tier paged again for the same burn\n{diagnose()}"

        # 3. The app dies: scrapes fail, its series go stale, "service down" pages.
        stop(app)
        down = wait_for(
            "ServiceDown or TelemetryMissing at the webhook",
            lambda: (
                hook.find("ServiceDown", "firing", severity="critical")
                or hook.find("TelemetryMissing", "firing")
            ),
            60,
            diagnose,
        )
        assert down["labels"]["environment"] == "e2e"
        assert down["annotations"]["runbook_url"].startswith(f"{RUNBOOKS}/")
