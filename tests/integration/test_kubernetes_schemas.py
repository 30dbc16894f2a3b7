"""The Kubernetes target against the operator's published resource schemas, and promtool.

The models of `cloudcoil-models-prometheus-operator` are generated from the operator's
CRDs. They ignore unknown keys, so a resource is accepted only when it survives a round
trip unchanged: a misspelt or misplaced field would be dropped and show up as a diff.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lightkeeper.stack.kubernetes import render
from tests.unit.stack._specs import example_spec
from tests.unit.stack.test_kubernetes import k8s_spec, remote_write_spec

operator = pytest.importorskip("cloudcoil.models.prometheus_operator")
from cloudcoil.models.prometheus_operator import v1, v1alpha1  # noqa: E402

MODELS: dict[str, Any] = {
    "PrometheusRule": v1.PrometheusRule,
    "ServiceMonitor": v1.ServiceMonitor,
    "PodMonitor": v1.PodMonitor,
    "AlertmanagerConfig": v1alpha1.AlertmanagerConfig,
}
SPECS = {"example": example_spec, "k8s": k8s_spec}


def _resources(files: dict[str, str]) -> list[dict[str, Any]]:
    return [yaml.safe_load(t) for p, t in sorted(files.items()) if p.startswith("kubernetes/")]


def _routes(route: dict[str, Any]) -> list[dict[str, Any]]:
    return [route, *(r for child in route.get("routes", []) for r in _routes(child))]


@pytest.mark.parametrize("which", sorted(SPECS))
def test_every_operator_resource_round_trips_through_the_published_schema(which: str) -> None:
    resources = _resources(render(SPECS[which]()))
    kinds = {r["kind"] for r in resources}
    assert set(MODELS) - {"PodMonitor"} <= kinds
    for resource in resources:
        model = MODELS.get(resource["kind"])
        if model is None:
            assert resource["kind"] == "ConfigMap"
            continue
        parsed = model.model_validate(resource)
        assert parsed.model_dump(mode="json", by_alias=True, exclude_none=True) == resource
        if resource["kind"] == "AlertmanagerConfig":
            # Child routes are free-form JSON in the CRD: validate each against the Route schema.
            for route in _routes(resource["spec"]["route"]):
                flat = {k: v for k, v in route.items() if k != "routes"}
                dumped = v1alpha1.Route.model_validate(flat).model_dump(
                    mode="json", by_alias=True, exclude_none=True
                )
                assert dumped == flat


def test_remote_write_in_the_stack_values_round_trips_through_the_prometheus_schema() -> None:
    values = yaml.safe_load(render(remote_write_spec())["helm/kube-prometheus-stack-values.yaml"])
    entries = values["prometheus"]["prometheusSpec"]["remoteWrite"]
    assert len(entries) == 2
    for entry in entries:
        dumped = v1.RemoteWrite.model_validate(entry).model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
        assert dumped == entry
    broken = {**entries[0], "basicAuth": {"password_file": "/run/secrets/x"}}  # the compose spelling
    dumped = v1.RemoteWrite.model_validate(broken).model_dump(mode="json", by_alias=True, exclude_none=True)
    assert dumped != broken


def test_the_round_trip_catches_a_misspelt_field() -> None:
    resource = next(r for r in _resources(render(k8s_spec())) if r["kind"] == "PodMonitor")
    resource["spec"]["podMetricsEndpoints"][0]["intervall"] = "30s"
    dumped = v1.PodMonitor.model_validate(resource).model_dump(mode="json", by_alias=True, exclude_none=True)
    assert dumped != resource


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
@pytest.mark.parametrize("which", sorted(SPECS))
def test_promtool_accepts_the_rules_inside_the_prometheus_rule(which: str, tmp_path: Path) -> None:
    rule = next(r for r in _resources(render(SPECS[which]())) if r["kind"] == "PrometheusRule")
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}), encoding="utf-8")
    result = subprocess.run(
        ["promtool", "check", "rules", str(rules_file)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    rule = next(r for r in _resources(render(k8s_spec())) if r["kind"] == "PrometheusRule")
    rule["spec"]["groups"][0]["rules"][0]["expr"] = "sum(("
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}), encoding="utf-8")
    result = subprocess.run(["promtool", "check", "rules", str(rules_file)], capture_output=True, timeout=60)
    assert result.returncode != 0
