"""Alert families over the server's, product, dependency and browser signals (issues 11, 14).

Their promtool firing and silent cases run with every other family's in
test_rule_tests.py; here: when each family exists, and what its PromQL selects.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lightkeeper import catalogue as cat
from lightkeeper.spec.loader import parse_spec
from lightkeeper.spec.models import Spec
from lightkeeper.stack import names, prometheus, rule_tests, rules
from lightkeeper.stack.dashboards import BUILDERS
from lightkeeper.stack.profile import get_profile
from lightkeeper.stack.rule_defs import AlertDef
from tests.unit.stack._specs import example_spec, plan_signals

BASE = "service: api\nenvironments:\n  prod: {targets: ['api:8000']}\n"
SERVER = "prometheus: {server_targets: ['lk:8080']}\n"
USAGE = (
    "usage:\n  events: [login_succeeded, workspace_created, feedback_report_submitted,"
    " {payment_attempted: {outcome: [success, failure]}}]\n"
    "  core: [login_succeeded]\n"
)
SERVER_ALERTS = {"ProbeDown", "TLSCertificateExpiring", "ServerSchedulerLagging", "NotificationOutboxBacklog"}


def _spec(extra: str = "") -> Spec:
    return parse_spec(BASE + extra, "families.yaml")


def _alerts(spec: Spec) -> dict[str, list[AlertDef]]:
    found: dict[str, list[AlertDef]] = {}
    for alert in rules.all_alerts(spec):
        found.setdefault(alert.name, []).append(alert)
    return found


def test_server_alerts_and_scrape_job_exist_only_with_a_server_target() -> None:
    without = _spec()
    assert SERVER_ALERTS.isdisjoint(_alerts(without))
    jobs = [j["job_name"] for j in prometheus.config(without, get_profile(None), [])["scrape_configs"]]
    assert names.SERVER_JOB not in jobs
    with_server = _spec(SERVER)
    found = _alerts(with_server)
    assert set(found) >= SERVER_ALERTS
    for name in SERVER_ALERTS:
        for alert in found[name]:
            # the server's series carry no service label: matching on it would never fire
            assert f'job="{names.SERVER_JOB}"' in alert.expr and 'service="api"' not in alert.expr
    cfg = prometheus.config(with_server, get_profile(None), [])
    (server_job,) = [j for j in cfg["scrape_configs"] if j["job_name"] == names.SERVER_JOB]
    assert server_job["static_configs"] == [{"targets": ["lk:8080"]}]


def test_tls_expiry_tickets_at_14_days_and_pages_at_3() -> None:
    tls = {a.severity: a for a in _alerts(_spec(SERVER))["TLSCertificateExpiring"]}
    assert {s: a.threshold for s, a in tls.items()} == {"medium": 14.0, "critical": 3.0}
    assert tls["critical"].expr.endswith("/ 86400 < 3")


def test_usage_quiet_compares_the_core_events_with_the_same_hour_last_week() -> None:
    assert "CoreUsageQuiet" not in _alerts(_spec("usage: {events: [login_succeeded]}\n"))
    (quiet,) = _alerts(_spec(USAGE))["CoreUsageQuiet"]
    assert 'event="login_succeeded"' in quiet.expr and "workspace_created" not in quiet.expr
    assert "[1h] offset 7d" in quiet.expr
    assert re.search(
        r"< 0\.3\nand on \(service, environment, event\)\n.*increase\(.*offset 7d\)\) >= 30$", quiet.expr
    )


def test_feedback_reports_need_the_event_declared_and_notify_at_low_severity() -> None:
    assert "FeedbackReportSubmitted" not in _alerts(_spec("usage: {events: [login_succeeded]}\n"))
    (feedback,) = _alerts(_spec(USAGE))["FeedbackReportSubmitted"]
    assert feedback.severity == "low" and feedback.for_ == "0s"
    assert 'event="feedback_report_submitted"' in feedback.expr


@pytest.mark.parametrize(
    ("alert", "scope"),
    [("EmailDeliveryFailing", 'dependency="email"'), ("BlobStorageFailing", 'dependency="s3"')],
)
def test_dependency_failures_leave_out_client_errors_and_need_traffic(alert: str, scope: str) -> None:
    (found,) = _alerts(_spec())[alert]
    assert f'{scope},outcome!~"success|client_error"' in found.expr
    assert found.min_requests > 0 and "increase(dependency_calls_total" in found.expr


def test_outbound_and_browser_alerts_group_by_host_and_page() -> None:
    found = _alerts(_spec())
    (outbound,) = found["OutboundHTTPErrorRateHigh"]
    assert "sum by (service, environment, host)" in outbound.expr and 'status_code=~"5.."' in outbound.expr
    for name, threshold in (("WebVitalsLCPSlow", 2.5), ("WebVitalsINPSlow", 0.2), ("WebVitalsCLSHigh", 0.1)):
        (vital,) = found[name]
        assert vital.expr.startswith("histogram_quantile(0.75, sum by (service, environment, page, le)")
        assert vital.threshold == threshold and vital.min_requests == 20
    assert "FrontendErrorSpike" in found


def test_browser_alerts_and_panels_leave_with_their_signals(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec()
    assert "Web performance" in _titles(BUILDERS["usage"](spec))
    plan_signals(monkeypatch, cat.WEB_VITALS_LCP)
    assert "WebVitalsLCPSlow" not in _alerts(spec) and "WebVitalsINPSlow" in _alerts(spec)
    assert "Web performance" not in _titles(BUILDERS["usage"](spec))


def test_workflow_row_shows_status_stuck_and_oldest_age() -> None:
    titles = _titles(BUILDERS["usage"](example_spec()))
    assert {"Workflow", "Entities by status", "Stuck entities", "Oldest processing age"} <= titles


def test_generated_files_put_the_new_families_in_their_own_rule_files() -> None:
    files = prometheus.render(example_spec())
    for file, alert in (
        ("synthetic.yml", "ProbeDown"),
        ("product.yml", "CoreUsageQuiet"),
        ("dependencies.yml", "EmailDeliveryFailing"),
        ("frontend.yml", "WebVitalsCLSHigh"),
    ):
        groups = yaml.safe_load(files[f"{prometheus.RULES_DIR}/{file}"])["groups"]
        assert alert in {r["alert"] for g in groups for r in g["rules"]}, file


def test_usage_events_with_a_failed_outcome_get_a_failure_ratio() -> None:
    assert "UsageFailureRateHigh" not in _alerts(
        _spec("usage: {events: [{pay: {outcome: [ok, declined]}}]}\n")
    )
    (failures,) = _alerts(_spec(USAGE))["UsageFailureRateHigh"]
    assert 'event="payment_attempted",outcome=~"error|failed|failure"' in failures.expr
    assert "sum by (service, environment, event)" in failures.expr and failures.min_requests == 20


@pytest.mark.parametrize("profile", [None, "test"])
def test_every_new_alert_fires_and_stays_silent_in_real_promtool(tmp_path: Path, profile: str | None) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool must be installed (Debian package prometheus)"
    spec = _spec(SERVER + USAGE)
    files = {**prometheus.render(spec, profile), **rule_tests.render(spec, profile)}
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    tests = ["synthetic.test.yml", "product.test.yml", "product-usage-quiet.test.yml"]
    for name in tests:
        text = files[f"tests/{name}"]
        assert "fires" in text and "stays silent" in text, name
    result = subprocess.run(
        [promtool, "test", "rules", *tests],
        cwd=tmp_path / "tests",
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert result.stdout.count("SUCCESS") == len(tests)


def _titles(dash: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for panel in dash["panels"]:
        found.add(panel["title"])
        found.update(p["title"] for p in panel.get("panels", []))
    return found
