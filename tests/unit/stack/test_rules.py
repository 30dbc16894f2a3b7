"""The alert and recording rules as data: labels, annotations, thresholds, profiles."""

from __future__ import annotations

import dataclasses
import re

import pytest

from lightkeeper import catalogue as cat
from lightkeeper.spec import starter
from lightkeeper.spec.loader import parse_spec
from lightkeeper.spec.models import Spec
from lightkeeper.stack import alertmanager, names, prometheus, rules
from lightkeeper.stack.alert_families import FAMILY_BY_KEY, is_active
from lightkeeper.stack.errors import GenerationError
from lightkeeper.stack.profile import get_profile
from lightkeeper.stack.rule_defs import AlertDef
from lightkeeper.stack.rule_exprs import EXPRESSIONS
from lightkeeper.stack.thresholds import family_thresholds
from tests.unit.stack._specs import ISSUE_EXAMPLE, example_spec, issue_spec, plan_signals

SEVERITIES = {"critical", "high", "medium", "low"}
_WORKFLOW = "workflow:\n  item: {processing_statuses: [publishing]}\n"


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
        if alert.category == "synthetic":  # the server's probes belong to no environment
            assert f'job="{names.SERVER_JOB}"' in alert.expr and "environment" not in alert.expr, alert.name
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


def test_meta_alerts_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    by_name = {a.name: a for a in rules.all_alerts(issue_spec())}
    assert by_name[names.WATCHDOG_ALERT].expr == "vector(1)"
    assert cat.BUILD_INFO.name in by_name[names.DEPLOY_ALERT].expr
    assert "Alerts are not silenced" in by_name[names.DEPLOY_ALERT].description
    assert names.DEPLOY_GRACE_ALERT not in by_name  # opt-in only
    # Only a lightkeeper server reports maintenance windows: no server target, no alert.
    assert names.MAINTENANCE_ALERT not in by_name
    assert cat.MAINTENANCE.emitter == "server"
    with_server = issue_spec().model_copy(
        update={"prometheus": issue_spec().prometheus.model_copy(update={"server_targets": ["lk:8080"]})}
    )
    # ... and only once the server emits the gauge (it is planned today).
    assert not cat.MAINTENANCE.emitted
    assert names.MAINTENANCE_ALERT not in {a.name for a in rules.all_alerts(with_server)}

    def inhibited_by_maintenance(spec: Spec) -> bool:
        return any(
            names.MAINTENANCE_ALERT in str(r["source_matchers"]) for r in alertmanager.inhibit_rules(spec)
        )

    assert not inhibited_by_maintenance(with_server)  # no rule for an alert that is never written
    monkeypatch.setattr(cat, "MAINTENANCE", dataclasses.replace(cat.MAINTENANCE, planned=None))
    by_name = {a.name: a for a in rules.all_alerts(with_server)}
    assert cat.MAINTENANCE.name in by_name[names.MAINTENANCE_ALERT].expr
    assert inhibited_by_maintenance(with_server) and not inhibited_by_maintenance(issue_spec())


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
    assert "LLMCostRateHigh" in by_name


def test_planned_signals_keep_their_families_out_but_not_their_thresholds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = parse_spec(ISSUE_EXAMPLE + "budgets: {llm_monthly_usd: 720}\n")
    assert "LLMCostRateHigh" in {a.name for a in rules.all_alerts(spec)}
    plan_signals(monkeypatch, cat.LLM_COST)
    assert "LLMCostRateHigh" not in {a.name for a in rules.all_alerts(spec)}
    # the defaults still follow the budget, ready for when the signal is emitted
    cost = family_thresholds(spec, FAMILY_BY_KEY["llm_cost_usd_per_hour"])
    assert cost == {"high": {"prod": 5.0, "beta": 5.0}, "medium": {"prod": 2.0, "beta": 2.0}}


def _planned_reads(spec: Spec) -> list[tuple[str, str]]:
    planned = {s.name for s in cat.ALL if not s.emitted}
    return [(a.name, name) for a in rules.all_alerts(spec) for name in planned if name in a.expr]


def test_no_rule_reads_a_signal_nothing_emits() -> None:
    spec = parse_spec(ISSUE_EXAMPLE + "budgets: {llm_monthly_usd: 720}\n" + _WORKFLOW)
    assert _planned_reads(spec) == []
    assert _planned_reads(example_spec()) == []


def test_no_rule_reads_a_planned_signal(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = parse_spec(ISSUE_EXAMPLE + "budgets: {llm_monthly_usd: 720}\n" + _WORKFLOW)
    assert {"LLMCostRateHigh", "WorkflowEntitiesStuck"} <= {a.name for a in rules.all_alerts(spec)}
    plan_signals(monkeypatch, cat.LLM_COST, cat.WORKFLOW_STUCK_ENTITIES)
    assert _planned_reads(spec) == []
    names_ = {a.name for a in rules.all_alerts(spec)}
    assert {"LLMCostRateHigh", "WorkflowEntitiesStuck"}.isdisjoint(names_)
    assert "HTTPErrorRateHigh" in names_


def test_families_over_planned_signals_come_back_once_emitted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cat, "all_emitted", lambda *signals: True)
    budget = "budgets: {llm_monthly_usd: 720}\n"
    with_workflow = {a.name for a in rules.all_alerts(parse_spec(ISSUE_EXAMPLE + budget + _WORKFLOW))}
    assert {"LLMCostRateHigh", "WorkflowEntitiesStuck"} <= with_workflow
    # workflow alerts also need workflow entities declared in the spec
    without = {a.name for a in rules.all_alerts(parse_spec(ISSUE_EXAMPLE + budget))}
    assert "LLMCostRateHigh" in without and "WorkflowEntitiesStuck" not in without


def test_is_active_checks_every_signal_an_expression_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = FAMILY_BY_KEY["db_pool_utilization"]
    assert is_active(issue_spec(), pool)
    planned_max = dataclasses.replace(cat.DB_CONNECTIONS_MAX, planned="a later issue")
    reads = (cat.DB_CONNECTIONS_ACTIVE, planned_max)
    monkeypatch.setitem(EXPRESSIONS, pool.expr, dataclasses.replace(pool.expression, reads=reads))
    assert not is_active(issue_spec(), pool)


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
    assert set(jobs) == {
        "saas-api-beta",
        "saas-api-prod",
        "saas-api-beta-node",  # the compose overlay's node-exporter, by default
        "saas-api-prod-node",
        names.SERVER_JOB,
    }
    server = jobs[names.SERVER_JOB]
    assert server["static_configs"] == [{"targets": ["lightkeeper:8080"]}] and server["honor_labels"]
    prod = jobs["saas-api-prod"]
    assert prod["static_configs"][0]["labels"] == {"service": "saas-api", "environment": "prod"}
    assert prod["authorization"] == {"type": "Bearer", "credentials_file": "/run/secrets/metrics_token"}
    assert cfg["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert cfg["global"]["external_labels"] == {"cluster": "eu-1"}
    assert "rules/slo-availability.yml" in cfg["rule_files"]


def test_ratio_and_quantile_alerts_need_traffic_to_fire() -> None:
    def exprs(alerts: str) -> dict[str, str]:
        spec = parse_spec(
            f"service: api\nenvironments: {{prod: {{targets: ['a:1']}}}}\nalerts:\n  {alerts}\n"
        )
        return {a.name: a.expr for a in rules.all_alerts(spec)}

    default = exprs("error_rate: {high: 0.1}")
    guard = "and on (service, environment)\nsum by (service, environment) (increase(http_requests_total"
    assert guard in default["HTTPErrorRateHigh"] and default["HTTPErrorRateHigh"].endswith(">= 50")
    assert "http_request_duration_seconds_count" in default["HTTPLatencyP95High"]
    assert "and on (service, environment, task)" in default["CeleryTaskFailureRateHigh"]
    for unguarded in ("CPUUtilizationHigh", "DBPoolSaturated", "ServiceDown"):
        assert "increase(" not in default[unguarded], unguarded
    assert exprs("error_rate: {high: 0.1, min_requests: 500}")["HTTPErrorRateHigh"].endswith(">= 500")
    assert " and " not in exprs("error_rate: {high: 0.1, min_requests: 0}")["HTTPErrorRateHigh"].replace(
        "\n", " "
    )


def test_a_traffic_floor_on_a_family_without_traffic_is_refused() -> None:
    text = "service: api\nenvironments: {prod: {targets: ['a:1']}}\nalerts:\n"
    spec = parse_spec(text + "  cpu_utilization: {min_requests: 5}\n")
    with pytest.raises(
        GenerationError, match=r"alerts\.cpu_utilization\.min_requests: cpu_utilization is not"
    ):
        rules.all_alerts(spec)


CELERY = """\
service: api
environments:
  prod: {targets: ["api:8000"], celery_targets: ["worker-2:9808", "worker-1:9808"]}
  beta: {targets: ["api-beta:8000"]}
"""


def test_celery_workers_are_scraped_per_environment_and_alerted_on_when_gone() -> None:
    import yaml

    spec = parse_spec(CELERY)
    cfg = yaml.safe_load(prometheus.render(spec)[prometheus.CONFIG_PATH])
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    assert set(jobs) == {"api-beta", "api-prod", "api-prod-celery", "api-beta-node", "api-prod-node"}
    assert jobs["api-prod-celery"]["static_configs"] == [
        {
            "targets": ["worker-1:9808", "worker-2:9808"],
            "labels": {"component": "celery-worker", "environment": "prod", "service": "api"},
        }
    ]
    alerts = rules.all_alerts(spec)
    down = [a for a in alerts if a.name == "CeleryWorkersDown"]
    assert [a.environments for a in down] == [("prod",)]  # beta declares no workers
    assert 'absent(up{service="api",environment="prod",job="api-prod-celery"})' in down[0].expr
    assert "== 0\nor\n" in down[0].expr
    # A live worker must not keep ServiceDown quiet while every API instance is down.
    service_down = next(a for a in alerts if a.name == "ServiceDown")
    assert 'up{service="api",component=""}' in service_down.expr


def test_without_worker_targets_nothing_about_workers_is_generated() -> None:
    alerts = rules.all_alerts(issue_spec())
    assert not [a for a in alerts if a.name == "CeleryWorkersDown"]
    # without node-exporters either, no target carries `component`: nothing to tell apart
    no_hosts = ISSUE_EXAMPLE.replace(
        'targets: ["api:8000"]', 'targets: ["api:8000"], node_targets: []'
    ).replace('targets: ["api-beta:8000"]', 'targets: ["api-beta:8000"], node_targets: []')
    bare = rules.all_alerts(parse_spec(no_hosts))
    assert not [a for a in bare if a.name == "CeleryWorkersDown"]
    assert "component" not in next(a for a in bare if a.name == "ServiceDown").expr


def test_component_is_a_reserved_target_label() -> None:
    with pytest.raises(ValueError, match="component is set by lightkeeper itself"):
        parse_spec(CELERY.replace('["api-beta:8000"]', '["api-beta:8000"], labels: {component: x}'))


def test_the_fast_page_outlives_the_slow_pages_short_window() -> None:
    burn = [a for a in rules.all_alerts(issue_spec()) if a.name == "AvailabilityErrorBudgetBurn"]
    keep = {a.long_window: a.keep_firing_for for a in burn}
    assert keep == {"1h": "30m", "6h": "0s", "1d": "0s", "3d": "0s"}
    text = prometheus.render(issue_spec())["prometheus/rules/slo-availability.yml"]
    assert text.count("keep_firing_for: 30m") == 1
    fast = next(a for a in rules.all_alerts(issue_spec(), "test") if a.long_window == "1m" and a.slo)
    assert fast.keep_firing_for == "30s"
    off = parse_spec(ISSUE_EXAMPLE + "inhibition: {faster_burn_silences_slower: false}\n")
    assert {a.keep_firing_for for a in rules.all_alerts(off)} == {"0s"}
