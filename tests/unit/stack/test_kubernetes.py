"""`generate --target kubernetes`: operator resources built from the same rules and routing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from lightkeeper.cli import _register, app
from lightkeeper.spec.loader import SpecError, parse_spec
from lightkeeper.spec.models import Spec
from lightkeeper.stack import alertmanager, prometheus
from lightkeeper.stack.dashboards import BUILDERS
from lightkeeper.stack.errors import GenerationError
from lightkeeper.stack.generate import generate
from lightkeeper.stack.kubernetes import alertmanager_config, render
from lightkeeper.stack.profile import get_profile
from lightkeeper.stack.writer import MARKER
from tests.unit.stack._specs import EXAMPLE, ISSUE_EXAMPLE

K8S_SPEC = (
    ISSUE_EXAMPLE.replace(
        'prod: {targets: ["api:8000"]}',
        'prod: {targets: ["api:8000"], celery_targets: ["worker:9808"], labels: {team: core},'
        " bearer_token_file: /run/secrets/metrics-token}",
    )
    + """\
prometheus: {server_targets: ["lightkeeper:8080"]}
kubernetes:
  namespace: observability
  resource_labels: {release: prom}
  environments:
    prod: {namespace: shop, selector: {app: api}, port: web, monitor: pod}
"""
)


def k8s_spec(text: str = K8S_SPEC) -> Spec:
    return parse_spec(text, "k8s.yaml")


def docs(files: dict[str, str], kind: str) -> list[dict[str, Any]]:
    found = [yaml.safe_load(t) for p, t in files.items() if p.startswith("kubernetes/")]
    return [d for d in found if d["kind"] == kind]


def one(files: dict[str, str], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in docs(files, kind) if d["metadata"]["name"] == name]
    assert len(matches) == 1, (kind, name, [d["metadata"]["name"] for d in docs(files, kind)])
    return matches[0]


def test_prometheus_rule_holds_the_generators_groups_with_the_namespace_label_on_alerts() -> None:
    spec = k8s_spec()
    rule = one(render(spec), "PrometheusRule", "api-rules")
    assert rule["metadata"]["namespace"] == "observability"
    assert rule["metadata"]["labels"]["release"] == "prom"
    compose_groups = [
        g for text in prometheus.render(spec).values() for g in (yaml.safe_load(text).get("groups") or [])
    ]
    k8s_groups = sorted(rule["spec"]["groups"], key=lambda g: g["name"])
    compose_groups.sort(key=lambda g: g["name"])
    assert [g["name"] for g in k8s_groups] == [g["name"] for g in compose_groups]
    # host alerts are kube-prometheus-stack's own in a cluster (kubernetes.rules.HOST_FAMILIES)
    hosts = {"HostCPUHigh", "HostMemoryHigh", "HostDiskFull"}
    assert hosts <= {r.get("alert") for g in compose_groups for r in g["rules"]}
    for ours, theirs in zip(k8s_groups, compose_groups, strict=True):
        kept = [r for r in theirs["rules"] if r.get("alert") not in hosts]
        for a, b in zip(ours["rules"], kept, strict=True):
            if "alert" in a:
                assert a["labels"].pop("namespace") == "observability"
            assert a == b


def test_monitors_relabel_job_service_environment_and_component() -> None:
    files = render(k8s_spec())
    service = one(files, "PodMonitor", "api-prod")
    assert service["metadata"]["namespace"] == "shop"
    assert service["spec"]["selector"] == {"matchLabels": {"app": "api"}}
    endpoint = service["spec"]["podMetricsEndpoints"][0]
    assert endpoint["port"] == "web"
    relabel = {r["targetLabel"]: r["replacement"] for r in endpoint["relabelings"]}
    assert relabel == {"job": "api-prod", "service": "api", "environment": "prod", "team": "core"}
    assert endpoint["authorization"]["credentials"] == {
        "name": "lightkeeper-alertmanager",
        "key": "metrics-token",
    }

    workers = one(files, "PodMonitor", "api-prod-celery")
    assert workers["spec"]["selector"]["matchLabels"] == {"app": "api", "component": "celery-worker"}
    worker_labels = {
        r["targetLabel"]: r["replacement"] for r in workers["spec"]["podMetricsEndpoints"][0]["relabelings"]
    }
    assert worker_labels["job"] == "api-prod-celery" and worker_labels["component"] == "celery-worker"

    # beta is not in `kubernetes.environments`: chart defaults, a ServiceMonitor, no workers.
    beta = one(files, "ServiceMonitor", "api-beta")
    assert beta["metadata"]["namespace"] == "beta"
    assert beta["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "api"}
    assert not [d for d in docs(files, "PodMonitor") if d["metadata"]["name"] == "api-beta-celery"]

    server = one(files, "ServiceMonitor", "lightkeeper-server")
    assert server["spec"]["endpoints"][0]["honorLabels"] is True
    assert server["metadata"]["namespace"] == "observability"


def test_no_server_or_worker_monitor_unless_the_spec_declares_them() -> None:
    files = render(parse_spec(ISSUE_EXAMPLE, "issue.yaml"))
    kinds = sorted(
        (d["kind"], d["metadata"]["name"]) for d in docs(files, "ServiceMonitor") + docs(files, "PodMonitor")
    )
    assert kinds == [("ServiceMonitor", "api-beta"), ("ServiceMonitor", "api-prod")]


def test_alertmanager_config_routes_like_alertmanager_yml() -> None:
    spec = k8s_spec()
    res = one(render(spec), "AlertmanagerConfig", "api-routing")
    source = alertmanager.config(spec, get_profile(None))

    def flat(node: dict[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
        here = (node["receiver"], tuple(sorted(node.get("matchers", []))))
        return [here] + [x for child in node.get("routes", []) for x in flat(child)]

    def flat_crd(node: dict[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
        ms = tuple(sorted(f'{m["name"]}{m["matchType"]}"{m["value"]}"' for m in node.get("matchers", [])))
        return [(node["receiver"], ms)] + [x for child in node.get("routes", []) for x in flat_crd(child)]

    assert flat_crd(res["spec"]["route"]) == flat(source["route"])
    assert res["spec"]["route"]["groupBy"] == source["route"]["group_by"]
    assert len(res["spec"]["inhibitRules"]) == len(source["inhibit_rules"])
    receivers = {r["name"]: r for r in res["spec"]["receivers"]}
    assert receivers["pager"]["pagerdutyConfigs"][0]["routingKey"] == {
        "name": "lightkeeper-alertmanager",
        "key": "pagerduty",
    }
    assert receivers["chat"]["slackConfigs"][0]["apiURL"]["key"] == "SLACK_WEBHOOK_URL"
    assert "null" in receivers


def test_secrets_never_appear_in_the_output(tmp_path: Path) -> None:
    text = K8S_SPEC.replace("webhook_url_env: SLACK_WEBHOOK_URL", "webhook_url_file: /run/secrets/slack.url")
    files = render(k8s_spec(text))
    routing = one(files, "AlertmanagerConfig", "api-routing")
    chat = next(r for r in routing["spec"]["receivers"] if r["name"] == "chat")
    assert chat["slackConfigs"][0]["apiURL"] == {"name": "lightkeeper-alertmanager", "key": "slack.url"}
    assert not [p for p in files if "secret" in p.lower()]


def test_matcher_conversion_and_its_failure() -> None:
    assert alertmanager_config.matcher('long_window=~"1h|6h"') == {
        "name": "long_window",
        "matchType": "=~",
        "value": "1h|6h",
    }
    assert alertmanager_config.matcher(r'a!="x\"y"')["value"] == 'x"y'
    with pytest.raises(GenerationError):
        alertmanager_config.matcher("severity critical")


def test_dashboards_are_sidecar_configmaps() -> None:
    maps = docs(render(k8s_spec()), "ConfigMap")
    assert len(maps) == len(BUILDERS)
    for cm in maps:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        ((name, text),) = cm["data"].items()
        assert name.endswith(".json") and '"uid"' in text


def test_helm_values_for_loki_tempo_and_the_stack() -> None:
    files = render(k8s_spec())
    loki = yaml.safe_load(files["helm/loki-values.yaml"])
    assert loki["deploymentMode"] == "SingleBinary"
    assert loki["loki"]["limits_config"]["retention_period"]
    tempo = yaml.safe_load(files["helm/tempo-values.yaml"])
    assert tempo["tempo"]["retention"] == "336h"
    stack = yaml.safe_load(files["helm/kube-prometheus-stack-values.yaml"])
    assert 'define "lightkeeper.title"' in stack["alertmanager"]["templateFiles"]["lightkeeper.tmpl"]
    uids = {d["uid"] for d in stack["grafana"]["additionalDataSources"]}
    assert uids == {"lk-prometheus", "lk-loki", "lk-tempo"}
    assert any("prom-prometheus.observability" in d["url"] for d in stack["grafana"]["additionalDataSources"])


def test_output_is_deterministic_and_written_atomically(tmp_path: Path) -> None:
    spec = k8s_spec()
    first = generate(spec, tmp_path / "out", target="kubernetes")
    again = render(k8s_spec())
    assert first == again
    written = {
        str(p.relative_to(tmp_path / "out")): p.read_text("utf-8")
        for p in (tmp_path / "out").rglob("*")
        if p.is_file() and p.name != MARKER
    }
    assert written == first


def test_unknown_kubernetes_environment_names_the_field() -> None:
    text = K8S_SPEC.replace("prod: {namespace: shop", "production: {namespace: shop")
    with pytest.raises(GenerationError) as exc:
        render(k8s_spec(text))
    assert exc.value.loc == ("kubernetes", "environments", "production")


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ("namespace: Observability", "namespace"),
        ("resource_labels: {release: 'has space'}", "label value"),
        ("environments: {prod: {port: this-port-name-is-too-long}}", "port NAME"),
        ("environments: {prod: {monitor: deployment}}", "monitor"),
        ("bogus: 1", "bogus"),
    ],
)
def test_bad_kubernetes_sections_are_spec_errors(bad: str, fragment: str) -> None:
    with pytest.raises(SpecError) as exc:
        parse_spec(ISSUE_EXAMPLE + f"kubernetes: {{{bad}}}\n", "bad.yaml")
    assert fragment in str(exc.value)


def test_bad_secret_path_is_refused() -> None:
    text = K8S_SPEC.replace("/run/secrets/metrics-token", "/run/secrets/token file")
    with pytest.raises(GenerationError, match="Secret key"):
        render(k8s_spec(text))


def test_cli_target_option(tmp_path: Path) -> None:
    _register()
    out = tmp_path / "obs"
    result = CliRunner().invoke(
        app, ["generate", "--spec", str(EXAMPLE), "--out", str(out), "--target", "kubernetes"]
    )
    assert result.exit_code == 0, result.output
    assert (out / "helm" / "loki-values.yaml").is_file()
    assert not (out / "prometheus").exists()
    bad = CliRunner().invoke(
        app, ["generate", "--spec", str(EXAMPLE), "--out", str(out), "--target", "swarm"]
    )
    assert bad.exit_code == 2


REMOTE_WRITE = """\
  retention: 4d
  remote_write:
    - url: https://mimir.example.com/api/v1/push
      basic_auth: {username: tenant-1, password_file: /run/secrets/mimir-password}
      queue_config: {max_shards: 20, capacity: 5000}
      retention: 400d
    - url: https://thanos.example.com/api/v1/receive
      bearer_token_file: /run/secrets/thanos-token
"""


def remote_write_spec() -> Spec:
    text = K8S_SPEC.replace(
        'prometheus: {server_targets: ["lightkeeper:8080"]}\n',
        'prometheus:\n  server_targets: ["lightkeeper:8080"]\n' + REMOTE_WRITE,
    )
    return k8s_spec(text)


def test_prometheus_retention_and_remote_write_reach_the_stack_values() -> None:
    stack = yaml.safe_load(render(remote_write_spec())["helm/kube-prometheus-stack-values.yaml"])
    prom = stack["prometheus"]["prometheusSpec"]
    assert prom["retention"] == "4d"
    mimir, thanos = prom["remoteWrite"]
    # Credentials are keys of the spec's one Secret, named after the files: never inline.
    assert mimir == {
        "url": "https://mimir.example.com/api/v1/push",
        "basicAuth": {
            "username": {"name": "lightkeeper-alertmanager", "key": "mimir-password-username"},
            "password": {"name": "lightkeeper-alertmanager", "key": "mimir-password"},
        },
        "queueConfig": {"capacity": 5000, "maxShards": 20},
    }
    assert thanos == {
        "url": "https://thanos.example.com/api/v1/receive",
        "authorization": {
            "type": "Bearer",
            "credentials": {"name": "lightkeeper-alertmanager", "key": "thanos-token"},
        },
    }
    assert "tenant-1" not in yaml.safe_dump(stack)  # the user name lives in the Secret too
    plain = yaml.safe_load(render(k8s_spec())["helm/kube-prometheus-stack-values.yaml"])
    assert plain["prometheus"]["prometheusSpec"] == {"retention": "30d"}


def test_a_secret_file_that_cannot_be_a_secret_key_names_the_field() -> None:
    text = K8S_SPEC.replace(
        'prometheus: {server_targets: ["lightkeeper:8080"]}\n',
        "prometheus:\n  remote_write:\n"
        "    - {url: 'https://m.example.com/push', bearer_token_file: '/run/secrets/thanos token'}\n",
    )
    with pytest.raises(GenerationError) as exc:
        render(k8s_spec(text))
    assert "prometheus.remote_write[0].bearer_token_file" in str(exc.value)
