"""Service discovery per environment and remote_write to a long-term store, in prometheus.yml.

Checked with the real promtool: `check config` for the configuration itself, and the whole
`lightkeeper check` path (rules and rule tests included) for a spec whose environments
are all discovered. Debian's promtool is built without Kubernetes discovery, so where it
refuses `kubernetes_sd_configs` for that reason alone, the rest of the job (relabelling
included) is still checked by promtool with that one block removed.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lightkeeper.spec.loader import SpecError, parse_spec
from lightkeeper.spec.models import DISCOVERED_SAMPLE_TARGET, Spec
from lightkeeper.stack import generate as gen
from lightkeeper.stack import prometheus
from lightkeeper.stack.errors import GenerationError
from lightkeeper.stack.rules import all_alerts
from lightkeeper.stack.validate import promtool_checks

SPEC = """\
service: api
environments:
  prod:
    targets: ["api-1:8000"]
    labels: {team: core}
    kubernetes_sd:
      namespace: shop
      selector: {app.kubernetes.io/name: api, tier: web}
      port: metrics
  beta:
    file_sd: {files: [targets/beta-*.json], refresh_interval: 1m}
    dns_sd: {names: [_metrics._tcp.beta.example.com]}
  dev:
    kubernetes_sd: {role: endpoints, selector: {app: api}}
    dns_sd: {names: [api.dev.example.com], type: A, port: 8000}
slos:
  - {name: availability, objective: 99.9, period: 30d, sli: {kind: availability}}
prometheus:
  retention: 15d
  remote_write:
    - url: https://mimir.example.com/api/v1/push
      basic_auth: {username: tenant-1, password_file: /run/secrets/mimir_password}
      queue_config: {capacity: 10000, max_shards: 50, max_samples_per_send: 2000}
      retention: 400d
    - url: http://thanos-receive:19291/api/v1/receive
      bearer_token_file: /run/secrets/thanos_token
"""

NO_KUBERNETES = "field kubernetes_sd_configs not found"


def _spec(text: str = SPEC) -> Spec:
    return parse_spec(text, "lk.yaml")


def _config(spec: Spec) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(prometheus.render(spec)[prometheus.CONFIG_PATH])
    return loaded


def _jobs(spec: Spec) -> dict[str, dict[str, Any]]:
    return {job["job_name"]: job for job in _config(spec)["scrape_configs"]}


def _problem(text: str) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(text, "lk.yaml")
    (problem,) = info.value.problems
    return str(problem)


def _promtool_check_config(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", "check", "config", *args, path.name],
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _check_with_promtool(config: dict[str, Any], tmp_path: Path, *args: str) -> str:
    """promtool's verdict on `config`; without Kubernetes discovery in this build, on the rest."""
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = _promtool_check_config(path, *args)
    if result.returncode != 0 and NO_KUBERNETES in result.stdout + result.stderr:
        for job in config["scrape_configs"]:
            job.pop("kubernetes_sd_configs", None)
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        result = _promtool_check_config(path, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


# --- scrape configs ---------------------------------------------------------------------
def test_discovered_targets_join_the_environments_one_job() -> None:
    jobs = _jobs(_spec())
    assert sorted(jobs) == ["api-beta", "api-dev", "api-prod"]
    beta = jobs["api-beta"]
    assert "static_configs" not in beta
    assert beta["file_sd_configs"] == [{"files": ["targets/beta-*.json"], "refresh_interval": "1m"}]
    assert beta["dns_sd_configs"] == [{"names": ["_metrics._tcp.beta.example.com"], "type": "SRV"}]
    assert jobs["api-dev"]["dns_sd_configs"] == [
        {"names": ["api.dev.example.com"], "type": "A", "port": 8000}
    ]
    prod = jobs["api-prod"]
    assert prod["static_configs"][0]["targets"] == ["api-1:8000"]
    assert prod["kubernetes_sd_configs"] == [
        {
            "role": "pod",
            "selectors": [{"role": "pod", "label": "app.kubernetes.io/name=api,tier=web"}],
            "namespaces": {"names": ["shop"]},
        }
    ]
    dev_k8s = jobs["api-dev"]["kubernetes_sd_configs"]
    assert dev_k8s == [{"role": "endpoints", "selectors": [{"role": "endpoints", "label": "app=api"}]}]


def _relabel(rules: list[dict[str, Any]], labels: dict[str, str]) -> dict[str, str] | None:
    """Prometheus' relabelling of one target (keep, drop, replace without source labels)."""
    out = dict(labels)
    for rule in rules:
        value = ";".join(out.get(name, "") for name in rule.get("source_labels", []))
        matches = re.fullmatch(rule.get("regex", "(.*)"), value) is not None
        if rule["action"] == "keep" and not matches:
            return None
        if rule["action"] == "drop" and matches:
            return None
        if rule["action"] == "replace" and matches:
            out[rule["target_label"]] = rule["replacement"]
    return {k: v for k, v in out.items() if not k.startswith("__")}


def test_relabelling_sets_service_and_environment_and_keeps_instance() -> None:
    rules = _jobs(_spec())["api-prod"]["relabel_configs"]
    pod = {
        "__address__": "10.0.0.7:9100",
        "instance": "10.0.0.7:9100",
        "__meta_kubernetes_namespace": "shop",
        "__meta_kubernetes_pod_container_port_name": "metrics",
        "__meta_kubernetes_pod_phase": "Running",
        # a label set on the pod itself must not win over the spec's
        "environment": "staging",
        "service": "something-else",
    }
    assert _relabel(rules, pod) == {
        "instance": "10.0.0.7:9100",
        "environment": "prod",
        "service": "api",
        "team": "core",
    }
    assert _relabel(rules, {**pod, "__meta_kubernetes_pod_container_port_name": "http"}) is None
    assert _relabel(rules, {**pod, "__meta_kubernetes_pod_phase": "Succeeded"}) is None
    assert _relabel(rules, {**pod, "__meta_kubernetes_pod_phase": "Pending"}) is None
    # the static target in the same job has no Kubernetes meta labels: kept, labelled alike
    static = {"__address__": "api-1:8000", "instance": "api-1:8000"}
    assert _relabel(rules, static) == {
        "instance": "api-1:8000",
        "environment": "prod",
        "service": "api",
        "team": "core",
    }
    endpoints = _jobs(_spec())["api-dev"]["relabel_configs"]
    endpoint = {
        "__meta_kubernetes_namespace": "dev",
        "__meta_kubernetes_endpoint_port_name": "http",
        "instance": "10.0.1.2:8000",
    }
    assert _relabel(endpoints, endpoint) == {
        "instance": "10.0.1.2:8000",
        "service": "api",
        "environment": "dev",
    }
    assert _relabel(endpoints, {**endpoint, "__meta_kubernetes_endpoint_port_name": "grpc"}) is None
    file_target = {"instance": "10.0.2.1:8000", "environment": "production"}  # a label from a file_sd file
    beta = _jobs(_spec())["api-beta"]["relabel_configs"]
    assert _relabel(beta, file_target) == {
        "instance": "10.0.2.1:8000",
        "service": "api",
        "environment": "beta",
    }
    assert all(
        rule.get("target_label") != "instance"
        for job in _jobs(_spec()).values()
        for rule in job.get("relabel_configs", [])
    )


def test_static_only_environments_are_written_as_before() -> None:
    job = _jobs(_spec("service: api\nenvironments:\n  prod: {targets: ['api:8000']}\n"))["api-prod"]
    assert job["static_configs"] == [
        {"targets": ["api:8000"], "labels": {"service": "api", "environment": "prod"}}
    ]
    assert not {"relabel_configs", "file_sd_configs", "dns_sd_configs", "kubernetes_sd_configs"} & set(job)
    assert "remote_write" not in _config(
        _spec("service: api\nenvironments:\n  prod: {targets: ['api:8000']}\n")
    )


def test_promtool_accepts_the_discovery_and_remote_write(tmp_path: Path) -> None:
    config = _config(_spec())
    out = _check_with_promtool(config, tmp_path, "--syntax-only")
    assert "SUCCESS" in out or out.strip().startswith("Checking")
    # the full check also reads the secret files: present, it passes too
    for target in ("mimir_password", "thanos_token"):
        (tmp_path / target).write_text("s3cret\n", encoding="utf-8")
    config = _config(_spec())
    config["remote_write"][0]["basic_auth"]["password_file"] = str(tmp_path / "mimir_password")
    config["remote_write"][1]["authorization"]["credentials_file"] = str(tmp_path / "thanos_token")
    (tmp_path / "rules").mkdir()
    config["rule_files"] = []
    assert "SUCCESS" in _check_with_promtool(config, tmp_path)


def test_promtool_refuses_a_broken_relabel_rule(tmp_path: Path) -> None:
    # the check above is only worth something if promtool reads the relabelling
    config = _config(_spec())
    config["scrape_configs"][0]["relabel_configs"].append(
        {"source_labels": ["a"], "regex": "(", "action": "keep"}
    )
    config["scrape_configs"][0].pop("kubernetes_sd_configs", None)
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert _promtool_check_config(path, "--syntax-only").returncode != 0


def test_lightkeeper_check_passes_for_a_discovered_only_spec(tmp_path: Path) -> None:
    text = SPEC.replace('    targets: ["api-1:8000"]\n', "")
    spec = _spec(text)
    assert spec.environments["prod"].targets == []
    out = tmp_path / "observability"
    gen.generate(spec, out)
    config = yaml.safe_load((out / prometheus.CONFIG_PATH).read_text(encoding="utf-8"))
    for job in config["scrape_configs"]:
        job.pop("kubernetes_sd_configs", None)  # Debian's promtool has no Kubernetes discovery
    (out / prometheus.CONFIG_PATH).write_text(yaml.safe_dump(config), encoding="utf-8")
    results = {r.name: r for r in promtool_checks(out, lambda _msg: None)}
    assert [r.status for r in results.values()] == ["ok", "ok", "ok"], results
    # rule tests label their synthetic series with a stand-in instance when none is static
    tests = "".join(p.read_text(encoding="utf-8") for p in (out / "tests").glob("*.test.yml"))
    assert DISCOVERED_SAMPLE_TARGET in tests


# --- spec validation --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("environment", "where", "says"),
    [
        (
            "prod: {metrics_path: /metrics}",
            "lk.yaml:3:9: environments.prod:",
            "file_sd, dns_sd, kubernetes_sd",
        ),
        ("prod: {dns_sd: {names: [x.example.com], port: 80}}", "environments.prod.dns_sd.port:", "SRV"),
        ("prod: {dns_sd: {names: [x.example.com], type: A}}", "environments.prod.dns_sd.type:", "port: 8000"),
        ("prod: {kubernetes_sd: {role: pod}}", "environments.prod.kubernetes_sd.selector:", "missing"),
        ("prod: {kubernetes_sd: {selector: {}}}", "environments.prod.kubernetes_sd.selector:", "labels"),
        (
            "prod: {kubernetes_sd: {role: node, selector: {a: b}}}",
            "environments.prod.kubernetes_sd.role:",
            "pod",
        ),
        ("prod: {file_sd: {files: []}}", "environments.prod.file_sd.files:", ""),
    ],
)
def test_bad_discovery_names_the_field(environment: str, where: str, says: str) -> None:
    problem = _problem(f"service: api\nenvironments:\n  {environment}\n")
    assert where in problem and says in problem, problem


@pytest.mark.parametrize(
    ("remote", "where", "says"),
    [
        (
            "{url: 'https://m/api/v1/push', basic_auth: {username: u, password: hunter2}}",
            "prometheus.remote_write[0].basic_auth.password:",
            "password_file",
        ),
        (
            "{url: 'https://m/api/v1/push', bearer_token: hunter2}",
            "prometheus.remote_write[0].bearer_token:",
            "bearer_token_file",
        ),
        (
            "{url: 'https://u:hunter2@m/api/v1/push'}",
            "prometheus.remote_write[0].url:",
            "never go in the URL",
        ),
        (
            "{url: 'https://m/push', basic_auth: {username: u, password_file: /p}, bearer_token_file: /t}",
            "prometheus.remote_write[0].bearer_token_file:",
            "not both",
        ),
        ("{url: 'https://m/push', queue_config: {max_shards: 0}}", "queue_config.max_shards:", ""),
        ("{url: 'https://m/push', retention: forever}", "prometheus.remote_write[0].retention:", "duration"),
        ("{url: 'mimir:9009/api/v1/push'}", "prometheus.remote_write[0].url:", "e.g. https://"),
    ],
)
def test_bad_remote_write_names_the_field(remote: str, where: str, says: str) -> None:
    head = "service: api\nenvironments:\n  prod: {targets: ['api:8000']}\n"
    problem = _problem(f"{head}prometheus:\n  remote_write:\n    - {remote}\n")
    assert problem.startswith("lk.yaml:6:") and where in problem and says in problem, problem
    assert "hunter2" not in problem


# --- retention ----------------------------------------------------------------------------
def _with_retention(prometheus_block: str) -> Spec:
    return _spec(
        "service: api\nenvironments:\n  prod: {targets: ['api:8000']}\n"
        "slos:\n  - {name: quarter, objective: 99.9, period: 90d, sli: {kind: availability}}\n"
        f"prometheus:\n{prometheus_block}"
    )


def test_the_slo_period_is_checked_against_the_long_term_store() -> None:
    local_only = _with_retention("  retention: 15d\n")
    with pytest.raises(GenerationError, match=r"needs 90d of history but prometheus\.retention is 15d"):
        all_alerts(local_only)
    assert all_alerts(
        _with_retention("  retention: 15d\n  remote_write:\n    - {url: 'https://m/push', retention: 400d}\n")
    )
    short = _with_retention(
        "  retention: 15d\n  remote_write:\n    - {url: 'https://a/push', retention: 30d}\n"
        "    - {url: 'https://b/push'}\n"
    )
    with pytest.raises(GenerationError, match=r"but prometheus\.remote_write\[0\]\.retention is 30d") as info:
        all_alerts(short)
    assert info.value.loc == ("slos", "quarter", "period")
    # a store without a stated retention says nothing about history: Prometheus' own counts
    unstated = _with_retention("  retention: 15d\n  remote_write:\n    - {url: 'https://m/push'}\n")
    with pytest.raises(GenerationError, match=r"prometheus\.retention is 15d"):
        all_alerts(unstated)


def test_burn_rate_windows_still_need_prometheus_own_history() -> None:
    # the tiers alert from Prometheus itself: its 3-day window cannot come from the store
    spec = _with_retention(
        "  retention: 2d\n  remote_write:\n    - {url: 'https://m/push', retention: 400d}\n"
    )
    with pytest.raises(GenerationError, match=r"needs 3d of history but prometheus\.retention is 2d"):
        all_alerts(spec)
