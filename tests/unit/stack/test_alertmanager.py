"""alertmanager.yml and its templates, checked by the real amtool and a real Alertmanager 0.25."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from lightkeeper.spec.loader import SpecError, parse_spec
from lightkeeper.spec.models import Spec
from lightkeeper.stack import alertmanager, names, rules
from lightkeeper.stack.errors import GenerationError
from lightkeeper.stack.profile import get_profile
from tests.support import services

SPEC = """
service: api
environments:
  prod: {targets: ["api:8000"]}
  beta: {targets: ["api-beta:8000"], thresholds: {latency_p95_seconds: 0.3}}
slos:
  - {name: availability, objective: 99.9, period: 30d, sli: {kind: availability}}
alerts:
  error_rate: {high: 0.05, critical: 0.5}
routing:
  critical: [pager, chat]
  high: [chat]
  medium: [tickets]
  low: []
runbooks: {base_url: "https://runbooks.example.com"}
receivers:
  pager: {pagerduty: {routing_key_file: /run/secrets/pagerduty}}
  chat: {slack: {webhook_url_env: SLACK_WEBHOOK_URL, channel: "#alerts"}}
  tickets: {webhook: {url: "https://tickets.example.com/hooks/alerts"}}
  mail:
    email: {to: oncall@example.com, from: am@example.com, smarthost: "smtp.example.com:587",
            auth_username: am, auth_password_env: SMTP_PASSWORD}
  genie: {opsgenie: {api_key_file: /run/secrets/opsgenie, api_url: "https://api.eu.opsgenie.com/"}}
"""


def spec(text: str = SPEC) -> Spec:
    return parse_spec(text)


def write(files: dict[str, str], root: Path) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / alertmanager.CONFIG_PATH


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["amtool", *args], capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return write(alertmanager.render(spec()), tmp_path)


# --- real amtool -------------------------------------------------------------------
def test_generated_config_passes_amtool_check_config(config_file: Path) -> None:
    result = amtool("check-config", str(config_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    # critical silences lower; the fast burn silences the slow page; deploys silence nothing
    assert "2 inhibit rules" in result.stdout
    assert "1 templates" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        ({"severity": "critical"}, "pager,chat"),
        ({"severity": "high"}, "chat"),
        ({"severity": "medium"}, "tickets"),
        ({"severity": "low"}, "null"),
        ({"severity": "critical", "alertname": "Watchdog"}, "watchdog"),
        ({"severity": "low", "alertname": "Watchdog", "environment": "all"}, "watchdog"),
        ({}, "null"),  # an alert without severity notifies nobody rather than everybody
    ],
)
def test_routes_reach_the_right_receivers(config_file: Path, labels: dict[str, str], receivers: str) -> None:
    base = {"alertname": "HTTPErrorRateHigh", "service": "api", "environment": "prod", "category": "errors"}
    pairs = [f"{k}={v}" for k, v in {**base, **labels}.items()]
    result = amtool("config", "routes", "test", f"--config.file={config_file}", *pairs)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == receivers


def test_routing_expectations_agree_with_amtool(config_file: Path) -> None:
    cases = alertmanager.routing_expectations(spec())
    by_env = [(c[0]["environment"], c[0]["severity"], c[1]) for c in cases]
    assert by_env == [
        ("beta", "critical", ["chat"]),
        ("beta", "high", ["chat"]),
        ("beta", "medium", ["null"]),
        ("beta", "low", ["null"]),
        ("prod", "critical", ["pager", "chat"]),
        ("prod", "high", ["chat"]),
        ("prod", "medium", ["tickets"]),
        ("prod", "low", ["null"]),
        ("beta", "low", ["watchdog"]),
    ]
    for labels, expected in cases:
        pairs = [f"{k}={v}" for k, v in labels.items()]
        verify = f"--verify.receivers={','.join(expected)}"
        result = amtool("config", "routes", "test", f"--config.file={config_file}", verify, *pairs)
        assert result.returncode == 0, (labels, result.stdout, result.stderr)


def _route(config: Path, **labels: str) -> str:
    base = {"alertname": "HTTPErrorRateHigh", "service": "api", "category": "errors", **labels}
    result = amtool(
        "config", "routes", "test", f"--config.file={config}", *(f"{k}={v}" for k, v in base.items())
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_only_production_pages_by_default(tmp_path: Path) -> None:
    text = SPEC.replace('  beta: {targets: ["api-beta:8000"]', '  staging: {targets: ["api-staging:8000"]')
    config = write(alertmanager.render(spec(text)), tmp_path)
    assert _route(config, severity="critical", environment="prod") == "pager,chat"
    assert _route(config, severity="critical", environment="staging") == "chat"
    assert _route(config, severity="high", environment="staging") == "chat"
    assert _route(config, severity="medium", environment="staging") == "null"
    # An environment label the spec does not declare is treated as production.
    assert _route(config, severity="critical", environment="elsewhere") == "pager,chat"


def test_an_environment_routes_itself_when_it_says_so(tmp_path: Path) -> None:
    text = SPEC.replace(
        "thresholds: {latency_p95_seconds: 0.3}}",
        "thresholds: {latency_p95_seconds: 0.3}, routing: {critical: [tickets], low: [chat]}}",
    )
    s = spec(text)
    config = write(alertmanager.render(s), tmp_path)
    assert _route(config, severity="critical", environment="beta") == "tickets"
    assert _route(config, severity="high", environment="beta") == "null"  # omitted: nobody
    assert _route(config, severity="low", environment="beta") == "chat"
    assert _route(config, severity="critical", environment="prod") == "pager,chat"
    assert {"environment": "beta", "severity": "critical"}.items() <= next(
        c for c, r in alertmanager.routing_expectations(s) if r == ["tickets"]
    ).items()


def test_a_second_production_environment_pages_too(tmp_path: Path) -> None:
    text = SPEC.replace("thresholds: {latency_p95_seconds: 0.3}}", "production: true}")
    config = write(alertmanager.render(spec(text)), tmp_path)
    assert _route(config, severity="critical", environment="beta") == "pager,chat"
    assert "environment=" not in config.read_text()  # no branch apart: the top-level routing


def test_a_single_environment_is_production_whatever_its_name() -> None:
    s = spec(
        "service: api\nenvironments: {eu: {targets: ['api:8000']}}\nrouting: {critical: [p]}\n"
        "receivers: {p: {pagerduty: {routing_key_file: /run/k}}}\n"
    )
    assert s.route_for("critical", "eu").receivers == ["p"]


def test_several_environments_and_none_production_is_an_error() -> None:
    text = SPEC.replace("  prod: {targets", "  eu: {targets")
    with pytest.raises(SpecError, match="production: true"):
        spec(text)


def test_an_unknown_receiver_in_an_environment_routing_is_an_error() -> None:
    text = SPEC.replace("thresholds: {latency_p95_seconds: 0.3}}", "routing: {critical: [sms]}}")
    with pytest.raises(SpecError, match=r"environments.beta.routing.critical names receiver 'sms'"):
        spec(text)


def test_a_watchdog_receiver_from_the_spec_gets_the_watchdog(tmp_path: Path) -> None:
    text = SPEC + '  watchdog: {webhook: {url: "https://hc-ping.example.com/abc-uuid"}}\n'
    config = write(alertmanager.render(spec(text)), tmp_path)
    data = yaml.safe_load(config.read_text())
    by_name = {r["name"]: r for r in data["receivers"]}
    assert by_name["watchdog"]["webhook_configs"][0]["url"] == "https://hc-ping.example.com/abc-uuid"
    result = amtool(
        "config", "routes", "test", f"--config.file={config}", "alertname=Watchdog", "severity=low"
    )
    assert result.stdout.strip() == "watchdog"
    assert amtool("check-config", str(config)).returncode == 0


def test_a_spec_with_no_receivers_is_still_valid(tmp_path: Path) -> None:
    config = write(
        alertmanager.render(spec("service: api\nenvironments: {prod: {targets: ['api:8000']}}\n")), tmp_path
    )
    assert amtool("check-config", str(config)).returncode == 0
    result = amtool("config", "routes", "test", f"--config.file={config}", "severity=critical")
    assert result.stdout.strip() == "null"


# --- timing ------------------------------------------------------------------------
def _severity_routes(s: Spec) -> dict[str, dict[str, object]]:
    routes = alertmanager.config(s)["route"]["routes"]
    return {r["matchers"][0].split('"')[1]: r for r in routes if r["matchers"][0].startswith("severity=")}


def test_critical_repeats_sooner_by_default() -> None:
    routes = _severity_routes(spec())
    assert routes["critical"]["repeat_interval"] == "1h"
    assert routes["critical"]["group_wait"] == "10s"
    assert routes["high"]["repeat_interval"] == "4h"
    assert routes["medium"]["repeat_interval"] == "12h"


def test_notification_values_written_in_the_spec_beat_severity_defaults() -> None:
    text = SPEC + "notification: {repeat_interval: 2h, group_by: [alertname, environment]}\n"
    s = spec(text)
    routes = _severity_routes(s)
    assert {r["repeat_interval"] for r in routes.values()} == {"2h"}
    assert routes["critical"]["group_wait"] == "10s"  # not written in the spec: severity default
    assert alertmanager.config(s)["route"]["group_by"] == ["alertname", "environment"]


def test_a_severity_long_form_beats_everything() -> None:
    text = SPEC.replace(
        "critical: [pager, chat]", "critical: {receivers: [pager, chat], repeat_interval: 30m}"
    )
    text += "notification: {repeat_interval: 2h}\n"
    routes = _severity_routes(spec(text))
    assert routes["critical"]["repeat_interval"] == "30m"
    assert routes["high"]["repeat_interval"] == "2h"


# --- secrets -----------------------------------------------------------------------
def test_secrets_never_reach_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_url = "https://hooks.slack.com/services/T000/B000/verysecretvalue"
    monkeypatch.setenv("SLACK_WEBHOOK_URL", secret_url)
    monkeypatch.setenv("SMTP_PASSWORD", "smtp-hunter2")
    key_file = tmp_path / "pd-key"
    key_file.write_text("pd-routing-key-123")
    text = SPEC.replace("/run/secrets/pagerduty", str(key_file))
    files = alertmanager.render(spec(text))
    everything = "".join(files.values())
    for secret in (secret_url, "verysecretvalue", "smtp-hunter2", "pd-routing-key-123"):
        assert secret not in everything
    data = yaml.safe_load(files[alertmanager.CONFIG_PATH])
    by_name = {r["name"]: r for r in data["receivers"]}
    assert (
        by_name["chat"]["slack_configs"][0]["api_url_file"] == "/etc/alertmanager/secrets/SLACK_WEBHOOK_URL"
    )
    assert (
        by_name["mail"]["email_configs"][0]["auth_password_file"] == "/etc/alertmanager/secrets/SMTP_PASSWORD"
    )
    assert by_name["pager"]["pagerduty_configs"][0]["routing_key_file"] == str(key_file)
    assert by_name["genie"]["opsgenie_configs"][0]["api_key_file"] == "/run/secrets/opsgenie"
    assert alertmanager.secret_env_vars(spec(text)) == {
        "SLACK_WEBHOOK_URL": "/etc/alertmanager/secrets/SLACK_WEBHOOK_URL",
        "SMTP_PASSWORD": "/etc/alertmanager/secrets/SMTP_PASSWORD",
    }


def test_every_secret_field_used_exists_in_alertmanager_025(tmp_path: Path) -> None:
    # A *_file field 0.25 does not know is a parse error in amtool, not silently ignored.
    config = write(alertmanager.render(spec()), tmp_path)
    text = config.read_text()
    for field in ("api_url_file", "routing_key_file", "auth_password_file", "api_key_file"):
        assert field in text
    assert amtool("check-config", str(config)).returncode == 0
    bogus = text.replace("api_url_file:", "api_url_filez:")
    config.write_text(bogus)
    assert amtool("check-config", str(config)).returncode != 0


@pytest.mark.parametrize("field", ["url_env: TICKETS_URL", "url_file: /run/secrets/tickets"])
def test_a_secret_webhook_url_is_refused_with_advice(field: str) -> None:
    text = SPEC.replace('url: "https://tickets.example.com/hooks/alerts"', field)
    with pytest.raises(GenerationError) as err:
        alertmanager.render(spec(text))
    message = str(err.value)
    assert "receivers.tickets.webhook" in message
    assert "0.25" in message
    assert "url_file" in message and "`url`" in message


def test_the_null_receiver_name_is_reserved() -> None:
    text = SPEC.replace("  tickets: {webhook", "  'null': {webhook")
    text = text.replace("medium: [tickets]", "medium: ['null']")
    with pytest.raises(GenerationError, match="reserved"):
        alertmanager.render(spec(text))


# --- inhibition ----------------------------------------------------------------------
def _matcher_labels(matchers: list[str]) -> set[str]:
    return {re.match(r"(\w+)\s*(=~|!~|!=|=)", m).group(1) for m in matchers}  # type: ignore[union-attr]


def test_inhibition_only_compares_labels_every_alert_carries() -> None:
    s = spec()
    inhibit = alertmanager.config(s)["inhibit_rules"]
    assert inhibit, "the spec enables inhibition"
    allowed = set(names.ALERT_LABELS)
    for rule in inhibit:
        # `equal` on a label some alerts lack treats "missing" == "missing": silences too much.
        assert set(rule["equal"]) <= allowed, rule
        matchers = rule["source_matchers"] + rule["target_matchers"]
        extra = {"alertname"}
        if all(m.startswith('alertname="') and m.endswith('ErrorBudgetBurn"') for m in matchers[::2]):
            extra.add("long_window")  # both sides pinned to one SLO's burn alert, which carries it
        assert _matcher_labels(matchers) <= allowed | extra, rule
    records = {r.record: r.expr for r in rules.all_records(s)}
    for alert in rules.all_alerts(s):
        static = alert.rule_labels()
        for label in ("severity", "service", "category"):
            assert label in static, (alert.name, label)
        # environment: static, or kept from the series by the expression (or the recording
        # rules it reads), which all aggregate `by (service, environment, ...)`.
        used = [alert.expr, *(expr for name, expr in records.items() if name in alert.expr)]
        assert "environment" in static or any("environment" in e for e in used), alert.name


def test_inhibition_can_be_switched_off() -> None:
    text = SPEC + (
        "inhibition: {critical_silences_lower: false, maintenance_silences_symptoms: false,"
        " faster_burn_silences_slower: false}\n"
    )
    assert alertmanager.config(spec(text))["inhibit_rules"] == []


@contextlib.contextmanager
def running_alertmanager(tmp_path: Path, extra: str = "") -> Iterator[str]:
    """A real Alertmanager 0.25 on a free port with the generated config (no notifications go out)."""
    text = """
service: api
environments: {prod: {targets: ["api:8000"]}, beta: {targets: ["api-beta:8000"]}}
routing: {critical: [hook], high: [hook], medium: [hook], low: []}
receivers:
  hook: {webhook: {url: "http://127.0.0.1:9/unused"}}
"""
    config = write(alertmanager.render(spec(text + extra)), tmp_path / "out")
    port = services.free_port()
    log = (tmp_path / "am.log").open("w")
    proc = subprocess.Popen(
        [
            "prometheus-alertmanager",
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        services.wait_for_port(port, timeout=20)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _alert(name: str, severity: str, environment: str, category: str, **extra: str) -> dict[str, object]:
    labels = {
        "alertname": name,
        "severity": severity,
        "service": "api",
        "environment": environment,
        "category": category,
        **extra,
    }
    return {"labels": labels, "annotations": {"summary": name}}


Key = Callable[[dict[str, Any]], tuple[str, str]]


def _by_name(alert: dict[str, Any]) -> tuple[str, str]:
    return alert["labels"]["alertname"], alert["labels"]["environment"]


def _suppressed(
    base_url: str, sent: list[dict[str, object]], expected: dict[tuple[str, str], bool], key: Key = _by_name
) -> dict[tuple[str, str], bool]:
    """Which alerts Alertmanager reports suppressed, read until it says `expected` or 15 s pass.

    The inhibitor learns of a source alert asynchronously, after the API has accepted it,
    so a read right after the post can still show its targets active.
    """
    with httpx.Client(base_url=base_url, timeout=5) as client:
        client.post("/api/v2/alerts", json=sent).raise_for_status()
        deadline = time.monotonic() + 15
        while True:
            got = client.get("/api/v2/alerts").json()
            state = {key(a): a["status"]["state"] == "suppressed" for a in got}
            if state == expected or time.monotonic() > deadline:
                return state
            time.sleep(0.1)


def test_real_alertmanager_inhibits_as_specified(tmp_path: Path) -> None:
    sent = [
        _alert("HTTPErrorRateHigh", "critical", "prod", "errors"),
        _alert("HTTPLatencyP95High", "high", "prod", "latency"),  # critical in prod: silenced
        _alert("CeleryQueueBacklog", "medium", "prod", "queue"),  # also silenced: same service/env
        _alert("HTTPLatencyP95High", "high", "beta", "latency"),  # a deploy in beta silences nothing
        _alert("DeploymentInProgress", "low", "beta", "meta"),
        _alert("Watchdog", "low", "all", "meta"),
        _alert("Watchdog", "low", "prod", "meta"),  # even with a critical next to it
    ]
    expected = {
        ("HTTPErrorRateHigh", "prod"): False,
        ("HTTPLatencyP95High", "prod"): True,
        ("CeleryQueueBacklog", "prod"): True,
        ("HTTPLatencyP95High", "beta"): False,
        ("DeploymentInProgress", "beta"): False,
        ("Watchdog", "all"): False,
        ("Watchdog", "prod"): False,
    }
    with running_alertmanager(tmp_path) as url:
        assert _suppressed(url, sent, expected) == expected


def test_real_alertmanager_deploy_grace_mutes_only_lower_tiers(tmp_path: Path) -> None:
    sent = [
        _alert("DeploymentGracePeriod", "low", "beta", "meta"),
        _alert("HTTPLatencyP95High", "high", "beta", "latency"),  # lower tier symptom: silenced
        _alert("AvailabilityErrorBudgetBurn", "medium", "beta", "slo", long_window="1d"),  # ticket: silenced
        _alert("CeleryWorkersMissing", "high", "beta", "queue"),  # not a symptom: stays active
        _alert("DeploymentGracePeriod", "low", "gamma", "meta"),
        _alert("HTTPErrorRateHigh", "critical", "gamma", "errors"),  # critical: never muted by a deploy
        _alert("AvailabilityErrorBudgetBurn", "critical", "gamma", "slo", long_window="1h"),  # fast burn
    ]
    expected = {
        ("DeploymentGracePeriod", "beta"): False,
        ("HTTPLatencyP95High", "beta"): True,
        ("AvailabilityErrorBudgetBurn", "beta"): True,
        ("CeleryWorkersMissing", "beta"): False,
        ("DeploymentGracePeriod", "gamma"): True,  # low, next to a critical: the usual rule
        ("HTTPErrorRateHigh", "gamma"): False,
        ("AvailabilityErrorBudgetBurn", "gamma"): False,
    }
    with running_alertmanager(tmp_path, "inhibition: {deploy_grace: 10m}\n") as url:
        assert _suppressed(url, sent, expected) == expected


def test_real_alertmanager_pages_once_per_burn(tmp_path: Path) -> None:
    slo = "slos: [{name: availability, objective: 99.9, period: 30d, sli: {kind: availability}}]\n"
    burn = "AvailabilityErrorBudgetBurn"
    sent = [
        _alert(burn, "critical", "prod", "slo", slo="availability", long_window="1h", short_window="5m"),
        _alert(burn, "critical", "prod", "slo", slo="availability", long_window="6h", short_window="30m"),
        _alert(burn, "critical", "beta", "slo", slo="availability", long_window="6h", short_window="30m"),
    ]
    # The fast page already reported the burn in prod; beta's slow burn has no fast page.
    expected = {("prod", "1h"): False, ("prod", "6h"): True, ("beta", "6h"): False}

    def by_window(alert: dict[str, Any]) -> tuple[str, str]:
        return alert["labels"]["environment"], alert["labels"]["long_window"]

    with running_alertmanager(tmp_path, slo) as url:
        assert _suppressed(url, sent, expected, by_window) == expected


def test_one_page_per_burn_follows_custom_tiers_and_the_test_profile() -> None:
    text = SPEC.replace(
        "sli: {kind: availability}}",
        "sli: {kind: availability}, alerting: {tiers: [{name: a, long_window: 2h, short_window: 10m,"
        " budget_share: 0.03, severity: critical}, {name: b, long_window: 12h, short_window: 1h,"
        " budget_share: 0.08, severity: high}, {name: c, long_window: 3d, short_window: 6h,"
        " budget_share: 0.1, severity: medium}]}}",
    )
    (rule,) = [r for r in alertmanager.config(spec(text))["inhibit_rules"] if "long_window" in str(r)]
    assert rule["source_matchers"] == ['alertname="AvailabilityErrorBudgetBurn"', 'long_window="2h"']
    assert rule["target_matchers"] == ['alertname="AvailabilityErrorBudgetBurn"', 'long_window=~"12h"']
    test = alertmanager.config(spec(text), get_profile("test"))["inhibit_rules"]
    assert 'long_window="2m"' in next(r for r in test if "long_window" in str(r))["source_matchers"]


def test_deploys_inhibit_nothing_by_default_and_grace_is_bounded() -> None:
    rules_ = alertmanager.config(spec())["inhibit_rules"]
    assert all("Deployment" not in m for r in rules_ for m in r["source_matchers"])
    with pytest.raises(SpecError, match="deploy_grace 2h must be between 1s and 1h"):
        spec(SPEC + "inhibition: {deploy_grace: 2h}\n")


def test_a_non_critical_fast_page_tier_is_kept_out_of_the_deploy_grace() -> None:
    text = SPEC.replace(
        "sli: {kind: availability}}",
        "sli: {kind: availability}, alerting: {tiers: [{name: fast, long_window: 1h, short_window: 5m,"
        " budget_share: 0.02, severity: high}, {name: slow, long_window: 6h, short_window: 30m,"
        " budget_share: 0.05, severity: high}]}}",
    )
    inhibit = alertmanager.config(spec(text + "inhibition: {deploy_grace: 10m}\n"))["inhibit_rules"]
    (grace,) = [r for r in inhibit if "DeploymentGracePeriod" in str(r["source_matchers"])]
    assert grace["source_matchers"] == ['alertname="DeploymentGracePeriod"']
    assert 'long_window!~"1h"' in grace["target_matchers"]
    assert 'severity!="critical"' in grace["target_matchers"]


# --- templates -----------------------------------------------------------------------
def _render_template(tmp_path: Path, name: str, data: str, kind: str = "text") -> str:
    write(alertmanager.render(spec()), tmp_path)
    data_file = tmp_path / "data.json"
    data_file.write_text(data)
    result = amtool(
        "template",
        "render",
        f"--template.glob={tmp_path / 'alertmanager' / 'templates' / '*.tmpl'}",
        '--template.text={{ template "' + name + '" . }}',
        f"--template.type={kind}",
        f"--template.data={data_file}",
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(("name", "kind"), sorted(alertmanager.TEMPLATES.items()))
def test_every_template_renders_with_amtool(tmp_path: Path, name: str, kind: str) -> None:
    out = _render_template(tmp_path, name, alertmanager.example_template_data(spec()), kind)
    assert out.strip(), f"{name} rendered nothing"


def test_notification_text_carries_summary_description_and_links(tmp_path: Path) -> None:
    data = alertmanager.example_template_data(spec())
    annotations = json.loads(data)["alerts"][0]["annotations"]
    title = _render_template(tmp_path, "lightkeeper.title", data)
    assert title.strip() == "[FIRING:1] CRITICAL ErrorRate - api/beta"
    for name in ("lightkeeper.text", "lightkeeper.slack.text"):
        text = _render_template(tmp_path, name, data)
        assert annotations["summary"] in text
        assert annotations["description"] in text
        assert "https://runbooks.example.com/ErrorRate.md" in text
        assert names.dashboard_url(spec(), "api-performance") in text
    assert _render_template(tmp_path, "lightkeeper.pagerduty.severity", data).strip() == "critical"
    assert _render_template(tmp_path, "lightkeeper.opsgenie.priority", data).strip() == "P1"


def test_resolved_alerts_are_labelled_and_html_is_escaped(tmp_path: Path) -> None:
    data = json.loads(alertmanager.example_template_data(spec()))
    data["status"] = "resolved"
    data["alerts"][0]["status"] = "resolved"
    data["alerts"][0]["annotations"]["description"] = "<script>alert(1)</script>"
    data["commonLabels"]["severity"] = "medium"
    payload = json.dumps(data)
    text = _render_template(tmp_path, "lightkeeper.text", payload)
    assert "Resolved:" in text and "Firing:" not in text
    html = _render_template(tmp_path, "lightkeeper.email.html", payload, "html")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert _render_template(tmp_path, "lightkeeper.slack.color", payload).strip() == "good"
    assert _render_template(tmp_path, "lightkeeper.pagerduty.severity", payload).strip() == "warning"


# --- output shape ---------------------------------------------------------------------
def test_output_is_deterministic_and_plain_yaml() -> None:
    first, second = alertmanager.render(spec()), alertmanager.render(spec())
    assert first == second
    text = first[alertmanager.CONFIG_PATH]
    assert "&id" not in text and "*id" not in text  # no YAML anchors
    assert yaml.safe_load(text)["templates"] == ["templates/*.tmpl"]
    assert set(first) == {alertmanager.CONFIG_PATH, alertmanager.TEMPLATE_PATH}


def test_the_starter_spec_never_pages_for_staging(tmp_path: Path) -> None:
    from lightkeeper.spec import starter

    starter_spec = spec(starter.render("shop"))
    config = write(alertmanager.render(starter_spec), tmp_path)
    # The reproduction: `amtool config routes test severity=critical environment=staging`.
    assert _route(config, severity="critical", environment="staging", service="shop") == "chat"
    assert _route(config, severity="critical", environment="prod", service="shop") == "pager,chat"


def _routes(route: dict[str, object], inherited: list[str]) -> Iterator[list[str]]:
    group_by = list(route.get("group_by", inherited))  # type: ignore[call-overload]
    yield group_by
    for child in route.get("routes", []) or []:  # type: ignore[attr-defined]
        yield from _routes(child, group_by)


def test_the_tiers_of_one_slo_share_a_notification_group(config_file: Path) -> None:
    """Alertmanager keys a group by route and group_by values: the tiers of one SLO differ only
    in their window labels (and ticket tiers in severity), so no route may group by a window,
    and both page tiers must take the same route to the same receivers."""
    tree = yaml.safe_load(config_file.read_text())["route"]
    for group_by in _routes(tree, []):
        assert not {"long_window", "short_window"} & set(group_by), group_by
        assert "alertname" in group_by or "..." in group_by
    base = ["alertname=AvailabilityErrorBudgetBurn", "service=api", "environment=prod", "category=slo"]
    base += ["slo=availability", "severity=critical"]
    seen = set()
    for long_window, short_window in (("1h", "5m"), ("6h", "30m")):
        result = amtool(
            "config", "routes", "test", f"--config.file={config_file}", *base,
            f"long_window={long_window}", f"short_window={short_window}",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        seen.add(result.stdout.strip())
    assert seen == {"pager,chat"}
