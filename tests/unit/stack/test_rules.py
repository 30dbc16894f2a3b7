"""The alert and recording rules as data: labels, annotations, thresholds, profiles."""

from __future__ import annotations

import re

import pytest

from lightkeeper import catalogue as cat
from lightkeeper.spec import starter
from lightkeeper.spec.loader import parse_spec
from lightkeeper.stack import names, prometheus, rules
from lightkeeper.stack.errors import GenerationError
from lightkeeper.stack.profile import get_profile
from lightkeeper.stack.rule_defs import AlertDef
from tests.unit.stack._specs import ISSUE_EXAMPLE, example_spec, issue_spec

SEVERITIES = {"critical", "high", "medium", "low"}


def test_every_alert_carries_the_shared_labels_and_annotations() -> None:
    spec = example_spec()
    for alert in rules.all_alerts(spec):
        labels = alert.rule_labels()
        assert labels["severity"] in SEVERITIES
        assert labels["service"] == "saas-api"
        assert labels["category"]
        ann = prometheus.alert_annotations(spec, alert)
        assert set(ann) == set(names.ALERT_ANNOTATIONS)
        assert ann["runbook_url"] == f"https://runbooks.example.com/saas-api/{alert.name}.md"
        assert ann["dashboard_url"].startswith("https://grafana.example.com/d/lk-saas-api-")


def test_environment_label_is_static_or_kept_by_the_expression() -> None:
    for alert in rules.all_alerts(example_spec()):
        if "environment" in alert.rule_labels():
            continue
        assert re.search(r"by \([^)]*environment|^service_environment|^slo:sli_error", alert.expr), alert.name


def test_slo_alerts_have_window_labels_and_workbook_severities() -> None:
    burn = [a for a in rules.all_alerts(issue_spec()) if a.name == "AvailabilityErrorBudgetBurn"]
    got = [(a.severity, a.rule_labels()["long_window"], a.rule_labels()["short_window"]) for a in burn]
    assert got == [
        ("critical", "1h", "5m"),
        ("critical", "6h", "30m"),
        ("medium", "1d", "2h"),
        ("medium", "3d", "6h"),
    ]
    assert all(a.rule_labels()["slo"] == "availability" for a in burn)
    assert "slo:sli_error:ratio_rate1h" in burn[0].expr and "slo:sli_error:ratio_rate5m" in burn[0].expr


def test_rate_is_taken_before_sum() -> None:
    exprs = [a.expr for a in rules.all_alerts(example_spec())] + [
        r.expr for r in rules.all_records(example_spec())
    ]
    for expr in exprs:
        assert not re.search(r"rate\(\s*sum", expr), expr
        assert not re.search(r"(increase|rate)\([^()]*\)\[", expr), expr


def test_per_environment_thresholds_split_rules() -> None:
    p95 = [a for a in rules.all_alerts(issue_spec()) if a.name == "HTTPLatencyP95High"]
    got = {(a.severity, a.environments, a.threshold) for a in p95}
    # beta's single number replaces the least severe tier (medium) only
    assert got == {("high", (), 2.0), ("medium", ("beta",), 0.3), ("medium", ("prod",), 0.5)}
    beta = next(a for a in p95 if a.environments == ("beta",))
    assert 'environment="beta"' in beta.expr and beta.rule_labels()["environment"] == "beta"


def test_telemetry_missing_is_per_environment_absent() -> None:
    missing = [a for a in rules.all_alerts(issue_spec()) if a.name == "TelemetryMissing"]
    assert [a.expr for a in missing] == [
        f'absent({cat.BUILD_INFO.name}{{service="api",environment="beta"}})',
        f'absent({cat.BUILD_INFO.name}{{service="api",environment="prod"}})',
    ]


def test_meta_alerts_exist() -> None:
    by_name = {a.name: a for a in rules.all_alerts(issue_spec())}
    assert by_name[names.WATCHDOG_ALERT].expr == "vector(1)"
    assert cat.BUILD_INFO.name in by_name[names.DEPLOY_ALERT].expr
    assert cat.MAINTENANCE.name in by_name[names.MAINTENANCE_ALERT].expr
    assert cat.MAINTENANCE.emitter == "server"


def test_disabled_and_overridden_families() -> None:
    text = ISSUE_EXAMPLE.replace(
        "alerts:\n", "alerts:\n  cpu_utilization: {enabled: false}\n  memory_bytes: {low: 100, for: 1h}\n"
    )
    spec = parse_spec(text + "budgets: {llm_monthly_usd: 720}\n")
    by_name: dict[str, list[AlertDef]] = {}
    for a in rules.all_alerts(spec):
        by_name.setdefault(a.name, []).append(a)
    assert "CPUUtilizationHigh" not in by_name
    (memory,) = by_name["MemoryUsageHigh"]
    assert (memory.severity, memory.threshold, memory.for_) == ("low", 100.0, "1h")
    cost = {a.severity: a.threshold for a in by_name["LLMCostRateHigh"]}
    assert cost == {"medium": 2.0, "high": 5.0}


@pytest.mark.parametrize(
    ("alerts", "message"),
    [
        ("error_rate: {high: 1.5}", "share between 0 and 1"),
        ("latency_p95_seconds: {high: 30}", "largest histogram bucket"),
        ("celery_workers_min: {high: 0}", "at least 1"),
    ],
)
def test_thresholds_that_can_never_fire_are_refused(alerts: str, message: str) -> None:
    spec = parse_spec(f"service: api\nenvironments: {{prod: {{targets: ['a:1']}}}}\nalerts:\n  {alerts}\n")
    with pytest.raises(GenerationError, match=message):
        rules.all_alerts(spec)


def test_test_profile_shortens_windows_and_for() -> None:
    spec = issue_spec()
    normal = {(a.name, a.severity, a.long_window): a for a in rules.all_alerts(spec)}
    fast = {(a.name, a.severity, a.long_window): a for a in rules.all_alerts(spec, "test")}
    err = next(a for (n, s, _), a in fast.items() if n == "HTTPErrorRateHigh" and s == "high")
    assert err.for_ == "5s" and "error_ratio_rate5s" in err.expr
    page = next(a for a in fast.values() if a.slo == "availability" and a.long_window == "1m")
    assert (page.short_window, page.for_, page.threshold) == ("5s", "2s", 0.0144)
    assert len(normal) == len(fast)
    cfg = prometheus.config(spec, get_profile("test"), [])
    assert cfg["global"] == {"scrape_interval": "1s", "evaluation_interval": "1s"}


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown profile 'fast'; use one of: default, test"):
        rules.all_alerts(issue_spec(), "fast")


def test_starter_spec_generates_at_least_fifteen_alert_rules() -> None:
    spec = parse_spec(starter.render("shop"))
    alerts = rules.all_alerts(spec)
    assert len(alerts) >= 15
    assert any(a.slo for a in alerts)


def test_prometheus_config_scrapes_each_environment_with_labels() -> None:
    spec = example_spec()
    import yaml

    cfg = yaml.safe_load(prometheus.render(spec)[prometheus.CONFIG_PATH])
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    assert set(jobs) == {"saas-api-beta", "saas-api-prod"}
    prod = jobs["saas-api-prod"]
    assert prod["static_configs"][0]["labels"] == {"service": "saas-api", "environment": "prod"}
    assert prod["authorization"] == {"type": "Bearer", "credentials_file": "/run/secrets/metrics_token"}
    assert cfg["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert cfg["global"]["external_labels"] == {"cluster": "eu-1"}
    assert "rules/slo-availability.yml" in cfg["rule_files"]
