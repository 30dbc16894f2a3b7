"""runbooks/<AlertName>.md: one page per alert, linked from the alert annotations."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lightkeeper.spec.loader import parse_spec
from lightkeeper.spec.models import Spec
from lightkeeper.stack import names, runbook_content, runbooks
from lightkeeper.stack.rule_defs import AlertDef
from lightkeeper.stack.rules import all_alerts

SPEC = """
service: api
environments:
  prod: {targets: ["api:8000"]}
  beta: {targets: ["api-beta:8000"], thresholds: {latency_p95_seconds: 0.3}}
slos:
  - {name: availability, objective: 99.9, period: 30d, sli: {kind: availability}}
alerts:
  error_rate: {high: 0.05, critical: 0.5}
  latency_p95_seconds: {medium: 0.5, high: 2.0}
routing: {critical: [pager, chat], high: [chat], medium: [tickets], low: []}
receivers:
  pager: {pagerduty: {routing_key_file: /run/secrets/pagerduty}}
  chat: {slack: {webhook_url_env: SLACK_WEBHOOK_URL}}
  tickets: {webhook: {url: "https://tickets.example.com/hooks"}}
dashboards: {grafana_url: "https://grafana.example.com"}
runbooks:
  alerts:
    HTTPErrorRateHigh: {steps: ["Call the on-call lead.", "Freeze deploys."]}
    ServiceDown: {url: "https://wiki.example.com/service-down"}
"""


def spec(text: str = SPEC) -> Spec:
    return parse_spec(text)


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    s = spec()
    return runbooks.render(s, all_alerts(s))


def test_one_page_per_alert_name_and_an_index(pages: dict[str, str]) -> None:
    s = spec()
    alert_names = {a.name for a in all_alerts(s)}
    assert set(pages) == {f"runbooks/{n}.md" for n in alert_names} | {runbooks.INDEX_PATH}
    for name in alert_names:
        assert f"[{name}]({name}.md)" in pages[runbooks.INDEX_PATH]


def test_annotation_links_resolve_to_generated_pages() -> None:
    s = spec().model_copy(update={"runbooks": spec().runbooks.model_copy(update={"base_url": ""})})
    files = runbooks.render(s, all_alerts(s))
    for alert in all_alerts(s):
        url = names.runbook_url(s, alert.name)
        if alert.name == "ServiceDown":
            assert url == "https://wiki.example.com/service-down"  # the team's own runbook wins
            continue
        assert url in files, url


def test_page_shows_meaning_routing_promql_and_dashboard(pages: dict[str, str]) -> None:
    s = spec()
    page = pages["runbooks/HTTPErrorRateHigh.md"]
    alerts = [a for a in all_alerts(s) if a.name == "HTTPErrorRateHigh"]
    assert {a.severity for a in alerts} == {"critical", "high"}
    for alert in alerts:
        assert alert.expr.strip() in page
    assert "| critical | every environment | 5m | beta: chat; prod: pager, chat |" in page
    assert "| high | every environment | 5m | chat |" in page
    assert f"[API Performance]({names.dashboard_url(s, 'api-performance')})" in page
    assert "## Likely causes" in page
    assert "<service> (<environment>) answers <value> 5xx" in page  # Prometheus templating made readable
    assert "{{" not in page
    assert "DeploymentInProgress" not in page  # a deploy silences nothing by default
    assert "MaintenanceWindow" not in page  # no lightkeeper server scraped: no maintenance windows
    grace = s.model_copy(update={"inhibition": s.inhibition.model_copy(update={"deploy_grace": "10m"})})
    page = runbooks.render(grace, all_alerts(grace))["runbooks/HTTPErrorRateHigh.md"]
    assert "silenced for at most 10m after a new version appears (DeploymentGracePeriod)" in page
    assert "deploys never silence critical alerts" in page


def test_spec_steps_replace_the_defaults(pages: dict[str, str]) -> None:
    page = pages["runbooks/HTTPErrorRateHigh.md"]
    assert "1. Call the on-call lead.\n2. Freeze deploys.\n" in page
    assert "Roll back the last deploy" not in page


def test_a_runbook_url_from_the_spec_is_linked(pages: dict[str, str]) -> None:
    assert "<https://wiki.example.com/service-down>" in pages["runbooks/ServiceDown.md"]


def test_per_environment_thresholds_each_get_their_rule(pages: dict[str, str]) -> None:
    page = pages["runbooks/HTTPLatencyP95High.md"]
    # beta is not production: its medium alerts notify nobody by default.
    assert "| medium | beta | 10m | nobody (recorded in Alertmanager only) |" in page
    assert "| medium | prod | 10m | tickets |" in page
    assert 'environment="beta"} > 0.3' in page


def test_low_severity_and_watchdog_routing_are_explained(pages: dict[str, str]) -> None:
    assert "nobody (recorded in Alertmanager only)" in pages["runbooks/DeploymentInProgress.md"]
    watchdog = pages["runbooks/Watchdog.md"]
    assert "nobody: no dead man's switch is configured (set `dead_mans_switch`" in watchdog
    s = spec()
    routed = s.model_copy(update={"dead_mans_switch": next(iter(s.receivers))})
    page = runbooks.render(routed, all_alerts(routed))["runbooks/Watchdog.md"]
    assert f"{next(iter(s.receivers))} (dead man's switch, repeats every 5m)" in page
    assert "Never inhibited" in watchdog
    assert "Prometheus is down" in watchdog  # its own causes, not the meta category's


def test_slo_page_lists_every_tier_with_its_windows(pages: dict[str, str]) -> None:
    page = pages["runbooks/AvailabilityErrorBudgetBurn.md"]
    for windows in ("1h and 5m", "6h and 30m", "1d and 2h", "3d and 6h"):
        assert f"every environment, {windows} windows" in page
    assert "slower page tiers are silenced while the fastest one fires" in page


def _alert(**changes: object) -> AlertDef:
    base = AlertDef(
        name="QueueStalled",
        expr='max by (service, environment) (celery_queue_length{service="api"}) > 10',
        severity="medium",
        category="queue",
        service="api",
        summary="Queue {{ $labels.queue }} holds {{ $value }} messages",
        description="More than 10 messages waited.",
        dashboard="database-queue",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


QUEUE = runbook_content.CONTENT.categories["queue"]


def test_category_defaults_when_neither_spec_nor_rule_gives_steps() -> None:
    page = runbooks.render(spec(), [_alert()])["runbooks/QueueStalled.md"]
    for i, step in enumerate(QUEUE.steps, start=1):
        assert f"{i}. {step}" in page
    for cause in QUEUE.causes:
        assert f"- {cause}" in page
    assert "Queue <queue> holds <value> messages" in page
    nobody = "nobody (recorded in Alertmanager only)"
    assert f"| medium | every environment | immediately | beta: {nobody}; prod: tickets |" in page


def test_rule_steps_are_used_when_the_spec_has_none() -> None:
    page = runbooks.render(spec(), [_alert(runbook_steps=("Drain the queue.",))])["runbooks/QueueStalled.md"]
    assert "1. Drain the queue.\n" in page
    assert QUEUE.steps[0] not in page


def test_a_family_without_content_gets_its_categorys_checks() -> None:
    # A family added without runbook text still gets a complete page (its category's panel).
    page = runbooks.render(spec(), [_alert()])["runbooks/QueueStalled.md"]
    assert "More than 10 messages waited." in page.split("## What it means", 1)[1].split("##", 1)[0]
    assert f"Panel **{QUEUE.fallback.panel}** of Database & Queue" in page
    assert "viewPanel=" in page and "amtool silence add" in page and "alertname=QueueStalled" in page


def test_the_familys_own_content_wins_over_its_category() -> None:
    pool = runbook_content.CONTENT.alerts["db_pool_utilization"]
    page = runbooks.render(spec(), [_alert(name="PoolFull", family="db_pool_utilization")])[
        "runbooks/PoolFull.md"
    ]
    assert pool.means in page and f"**{pool.panel}**" in page
    assert all(f"- {cause}" in page for cause in pool.causes)
    assert QUEUE.causes[0] not in page


def test_a_markdown_injection_in_a_summary_stays_text() -> None:
    # Summaries come from the spec's authors, but a stray `{{` must not break the template engine.
    page = runbooks.render(spec(), [_alert(summary="{% raw %}{{ odd }}")])["runbooks/QueueStalled.md"]
    assert "{% raw %}<...>" in page


def test_output_is_deterministic_whatever_the_alert_order() -> None:
    s = spec()
    alerts = all_alerts(s)
    assert runbooks.render(s, alerts) == runbooks.render(s, list(reversed(alerts)))
