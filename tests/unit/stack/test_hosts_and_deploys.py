"""Issue 14, stack side: host alerts (node-exporter), a new exception type, latency week over
week, DeploymentInProgress from the server's own data, and the Deployment Health dashboard.

The generated promtool cases run with the real promtool; mutated rules must fail them,
so the cases are shown to bite. The server's deployment gauge comes from its real
collector (`server.deploys.metrics.families`), not from a hand-written series.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from lightkeeper import catalogue as cat
from lightkeeper.server.deploys import metrics as deploy_metrics
from lightkeeper.server.deploys import store
from lightkeeper.spec.loader import parse_spec
from lightkeeper.spec.models import Spec
from lightkeeper.stack import compose, grafana, meta_rules, names, prometheus, rule_exprs, rule_tests, rules
from lightkeeper.stack.errors import GenerationError
from lightkeeper.stack.kubernetes import rules as k8s_rules
from lightkeeper.stack.profile import get_profile
from lightkeeper.stack.rule_defs import AlertDef

PROMTOOL = shutil.which("promtool")
SPEC = """\
service: api
environments:
  prod: {targets: ["api:8000"]}
  staging: {targets: ["api-staging:8000"], node_targets: ["staging-host:9100"]}
  preview:
    kubernetes_sd: {role: pod, selector: {app: api}, port: metrics}
route_groups: {chat: ["/api/chat"], items: ["/api/items/{item_id}"]}
prometheus: {server_targets: ["lk:8080"]}
"""
HOST_ALERTS = {"HostCPUHigh", "HostMemoryHigh", "HostDiskFull"}


def _spec(text: str = SPEC) -> Spec:
    return parse_spec(text, "issue14.yaml")


def _alerts(spec: Spec) -> dict[str, list[AlertDef]]:
    found: dict[str, list[AlertDef]] = {}
    for alert in rules.all_alerts(spec):
        found.setdefault(alert.name, []).append(alert)
    return found


def _write(files: dict[str, str], root: Path) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root


def _promtool(root: Path, *tests: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL, "promtool must be installed (Debian package prometheus)"
    return subprocess.run(
        [PROMTOOL, "test", "rules", *tests],
        cwd=root / "tests",
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def files() -> dict[str, str]:
    spec = _spec()
    return {**prometheus.render(spec), **rule_tests.render(spec)}


# --- hosts ----------------------------------------------------------------------------------
def test_node_jobs_follow_the_spec_and_keep_only_the_catalogue_families() -> None:
    cfg = prometheus.config(_spec(), get_profile(None), [])
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    # static targets default to the overlay's exporter; a named exporter wins; discovery gets none
    assert jobs["api-prod-node"]["static_configs"][0]["targets"] == [names.COMPOSE_NODE_TARGET]
    assert jobs["api-staging-node"]["static_configs"][0]["targets"] == ["staging-host:9100"]
    assert "api-preview-node" not in jobs
    labels = jobs["api-prod-node"]["static_configs"][0]["labels"]
    assert labels == {"component": "node-exporter", "environment": "prod", "service": "api"}
    (keep,) = jobs["api-prod-node"]["metric_relabel_configs"]
    assert keep["action"] == "keep" and keep["source_labels"] == ["__name__"]
    kept = set(keep["regex"].split("|"))
    assert kept == {s.name for s in cat.ALL if s.emitter == "node_exporter"}
    assert "process_cpu_seconds_total" not in kept  # node-exporter's own process stays out


def test_host_alerts_only_where_hosts_are_scraped_and_service_down_ignores_exporters() -> None:
    found = _alerts(_spec())
    assert set(found) >= HOST_ALERTS
    for name in HOST_ALERTS:
        (alert,) = found[name]
        assert alert.environments == ("prod", "staging"), name  # not the discovered preview
        assert alert.category == "saturation" and alert.severity == "high"
    assert {a.threshold for n in HOST_ALERTS for a in found[n]} == {0.9, 0.95}
    (disk,) = found["HostDiskFull"]
    assert 'fstype!~"tmpfs|overlay|squashfs"' in disk.expr and "mountpoint" in disk.expr
    (down,) = found["ServiceDown"]
    assert 'component=""' in down.expr
    off = _spec(
        SPEC.replace('node_targets: ["staging-host:9100"]', "node_targets: []").replace(
            'prod: {targets: ["api:8000"]}', 'prod: {targets: ["api:8000"], node_targets: []}'
        )
    )
    assert HOST_ALERTS.isdisjoint(_alerts(off))
    assert not [
        j for j in prometheus.config(off, get_profile(None), [])["scrape_configs"] if "node" in j["job_name"]
    ]
    assert "node-exporter" not in compose.config(off)["services"]


def test_node_targets_must_be_host_port() -> None:
    with pytest.raises(ValueError, match="host:port"):
        _spec(SPEC.replace('node_targets: ["staging-host:9100"]', 'node_targets: ["http://h/metrics"]'))


def test_compose_runs_node_exporter_against_the_host_root() -> None:
    service = compose.config(_spec())["services"]["node-exporter"]
    assert service["image"] == compose.IMAGES["node-exporter"]
    assert service["pid"] == "host"
    assert service["volumes"] == [f"/:{compose.NODE_ROOTFS}:ro,rslave"]
    assert service["command"] == [f"--path.rootfs={compose.NODE_ROOTFS}"]
    assert "ports" not in service  # reached on the Compose network only


def test_kubernetes_leaves_host_alerts_to_kube_prometheus_stack() -> None:
    spec = _spec()
    alerts = {
        r["alert"] for g in k8s_rules.groups(spec, get_profile(None)) for r in g["rules"] if "alert" in r
    }
    assert HOST_ALERTS.isdisjoint(alerts)
    assert {"NewExceptionType", "LatencyRegressionWeekOverWeek", "ServiceDown"} <= alerts


# --- a new exception type, latency week over week -------------------------------------------
def test_new_exception_type_compares_series_existence_with_the_week_before() -> None:
    (alert,) = _alerts(_spec())["NewExceptionType"]
    assert alert.severity == "low" and alert.for_ == "0s" and alert.threshold is None
    assert "increase" not in alert.expr  # a new series' first sample is never an increase
    assert 'max_over_time(http_exceptions_total{service="api"}[10m])' in alert.expr
    assert re.search(r"unless on \(service, environment, exception_type\)\n.*\[7d\] offset 10m", alert.expr)
    assert re.search(r"lightkeeper_build_info\{service=\"api\"\}\[10m\] offset 7d", alert.expr)


def test_latency_regression_compares_each_route_group_with_last_week() -> None:
    (alert,) = _alerts(_spec())["LatencyRegressionWeekOverWeek"]
    assert alert.threshold == 1.2 and alert.for_ == "30m"
    assert '"route_group", "chat"' in alert.expr and '"route_group", "items"' in alert.expr
    assert alert.expr.count("offset 7d") == 4  # quantile and traffic floor, per group
    assert alert.expr.count(f">= {rule_exprs.REGRESSION_MIN_REQUESTS}") == 4
    no_groups = SPEC.replace('route_groups: {chat: ["/api/chat"], items: ["/api/items/{item_id}"]}\n', "")
    (whole,) = _alerts(_spec(no_groups))["LatencyRegressionWeekOverWeek"]
    assert f'"route_group", "{rule_exprs.ALL_ROUTES}"' in whole.expr and "route=" not in whole.expr
    with pytest.raises(GenerationError, match="got faster"):
        rules.all_alerts(_spec(SPEC + "alerts: {latency_regression_ratio: {medium: 1.0}}\n"))


# --- deployments ----------------------------------------------------------------------------
def test_deployment_in_progress_reads_the_server_and_falls_back_to_versions() -> None:
    (server,) = _alerts(_spec())[names.DEPLOY_ALERT]
    assert server.expr == meta_rules.deploy_in_progress_expr(rule_exprs.Ctx(_spec(), get_profile(None)))
    assert 'env=~"preview|prod|staging"' in server.expr
    assert 'label_join(deployments_in_progress{job="lightkeeper-server"' in server.expr
    assert server.expr.endswith('"environment", "", "env")) > 0')
    assert server.dashboard == "deployments"
    (versions,) = _alerts(_spec(SPEC.replace('prometheus: {server_targets: ["lk:8080"]}', "")))[
        names.DEPLOY_ALERT
    ]
    assert "lightkeeper_build_info" in versions.expr and "deployments_in_progress" not in versions.expr


def test_deploy_grace_still_inhibits_by_version_with_a_server() -> None:
    found = _alerts(_spec(SPEC + "inhibition: {deploy_grace: 10m}\n"))
    (grace,) = found[names.DEPLOY_GRACE_ALERT]
    assert "lightkeeper_build_info" in grace.expr and "offset 10m" in grace.expr


class _Rows(Collector):
    def __init__(self, rows: list[store.Deployment]) -> None:
        self.rows = rows

    def collect(self) -> Any:
        return deploy_metrics.families(self.rows)


def _server_exposition(rows: list[store.Deployment]) -> list[str]:
    """The server's real /metrics text for `rows`, as promtool input series after the scrape."""
    registry = CollectorRegistry()
    registry.register(_Rows(rows))
    text = generate_latest(registry).decode()
    out = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == cat.DEPLOYMENTS_IN_PROGRESS.name:
                labels = {**sample.labels, "job": names.SERVER_JOB, "instance": "lk:8080"}  # honor_labels
                out.append(rule_tests.series_text(sample.name, labels) + f" {sample.value:g}x10")
    return out


def test_the_servers_own_gauge_fires_deployment_in_progress_with_environment(tmp_path: Path) -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    rows = [
        store.Deployment("prod", "api", "1.4.2", store.IN_PROGRESS, at, None, None),
        store.Deployment("staging", "api", "1.4.1", "success", at, at, at),
        store.Deployment("elsewhere", "web", "9", store.IN_PROGRESS, at, None, None),
    ]
    series = _server_exposition(rows)
    assert any('env="prod"' in s for s in series), series  # the server says env, not environment
    spec = _spec()
    (alert,) = _alerts(spec)[names.DEPLOY_ALERT]
    files = prometheus.render(spec)
    test = {
        "rule_files": ["../prometheus/rules/meta.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": s.rsplit(" ", 1)[0], "values": s.rsplit(" ", 1)[1]} for s in series
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "5m",
                        "alertname": alert.name,
                        "exp_alerts": [
                            rule_tests.expected_alert(
                                spec, alert, {"environment": "prod", "component": "api"}, 1.0
                            )
                        ],
                    }
                ],
            }
        ],
    }
    files["tests/server.test.yml"] = yaml.safe_dump(test)
    result = _promtool(_write(files, tmp_path), "server.test.yml")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


# --- generated promtool cases ---------------------------------------------------------------
NEW_TESTS = (
    "saturation.test.yml",
    "meta.test.yml",
    "telemetry.test.yml",
    "week-over-week-new-exception.test.yml",
    "week-over-week-latency-regression.test.yml",
)


def test_new_alerts_fire_and_stay_silent_in_real_promtool(files: dict[str, str], tmp_path: Path) -> None:
    for name in NEW_TESTS:
        text = files[f"tests/{name}"]
        assert "fires" in text and "stays silent" in text, name
    for alert in ("HostCPUHigh", "HostMemoryHigh", "HostDiskFull"):
        assert f"{alert} high (prod) fires" in files["tests/saturation.test.yml"]
    assert "no week of history" in files["tests/week-over-week-new-exception.test.yml"]
    assert "below 100" in files["tests/week-over-week-latency-regression.test.yml"]
    result = _promtool(_write(files, tmp_path), *NEW_TESTS)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert result.stdout.count("SUCCESS") == len(NEW_TESTS)


def _mutate(files: dict[str, str], rule_file: str, old: str, new: str) -> dict[str, str]:
    path = f"{prometheus.RULES_DIR}/{rule_file}"
    data = yaml.safe_load(files[path])
    changed = 0
    for group in data["groups"]:
        for rule in group["rules"]:
            changed += old in rule["expr"]
            rule["expr"] = rule["expr"].replace(old, new)
    assert changed, old
    return {**files, path: yaml.safe_dump(data)}


@pytest.mark.parametrize(
    ("rule_file", "old", "new", "test_file"),
    [
        # a full tmpfs counted as a full disk
        ("saturation.yml", 'fstype!~"tmpfs|overlay|squashfs"', 'fstype!~"none"', "saturation.test.yml"),
        # the server's env label read as if it were already `environment`
        ("meta.yml", 'env=~"preview|prod|staging"', 'environment=~"preview|prod|staging"', "meta.test.yml"),
        # no history guard: a fresh install reports every type as new
        (
            "week-over-week.yml",
            "and on (service, environment)\n",
            "or on (service, environment)\n",
            "week-over-week-new-exception.test.yml",
        ),
    ],
)
def test_the_generated_cases_catch_a_broken_rule(
    files: dict[str, str], tmp_path: Path, rule_file: str, old: str, new: str, test_file: str
) -> None:
    result = _promtool(_write(_mutate(files, rule_file, old, new), tmp_path), test_file)
    assert result.returncode != 0, result.stdout[-2000:]
    assert "FAILED" in result.stdout + result.stderr


# --- dashboards -----------------------------------------------------------------------------
def _dashboards(spec: Spec) -> dict[str, dict[str, Any]]:
    return {
        path.rsplit("/", 1)[-1].removesuffix(".json"): json.loads(text)
        for path, text in grafana.render(spec).items()
        if path.endswith(".json")
    }


def test_every_dashboard_marks_deploys_and_the_deployments_dashboard_shows_dora(tmp_path: Path) -> None:
    dashboards = _dashboards(_spec())
    assert "deployments" in dashboards
    exprs: list[str] = []
    for key, dash in dashboards.items():
        marks = [a for a in dash["annotations"]["list"] if a.get("expr")]
        assert [a["name"] for a in marks] == ["New version", "Deployments (CI)"], key
        exprs.extend(a["expr"] for a in marks)
    titles = {p["title"] for p in dashboards["deployments"]["panels"]}
    assert {
        "Deployments per day by status",
        "Change-failure rate",
        "Rollback rate",
        "Duration",
        "Lead time",
        "In progress",
    } <= titles
    for panel in dashboards["deployments"]["panels"]:
        exprs.extend(t["expr"] for t in panel.get("targets", []))
    without_server = _dashboards(_spec(SPEC.replace('prometheus: {server_targets: ["lk:8080"]}', "")))
    assert "Change-failure rate" not in {p["title"] for p in without_server["deployments"]["panels"]}
    assert [a["name"] for a in without_server["slos"]["annotations"]["list"] if a.get("expr")] == [
        "New version"
    ]
    # every query parses in the real promtool, with the dashboard variables filled in
    values = {"$__range": "1d", "$service": "api", "$environment": ".*"}
    rules_ = []
    for i, expr in enumerate(exprs):
        for var, value in values.items():
            expr = expr.replace(var, value)
        assert "$" not in expr.replace('"$1"', ""), expr
        for metric in re.findall(r"([a-z_:][\w:]*)\{", expr):
            assert cat.lookup_series(metric) is not None, metric
        rules_.append({"record": f"lk:check:{i}", "expr": expr})
    path = tmp_path / "dashboards.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "d", "rules": rules_}]}))
    assert PROMTOOL
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
