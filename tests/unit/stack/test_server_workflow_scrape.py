"""A workflow the server samples (server.workflow_database_url_env) is scraped from the server
with the service's and the environment's labels, so the generated workflow alerts read it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lightkeeper.spec.loader import SpecError, parse_spec
from lightkeeper.stack import kubernetes, prometheus
from tests.unit.stack._specs import ISSUE_EXAMPLE

SAMPLED = (
    ISSUE_EXAMPLE
    + """\
prometheus: {server_targets: ["lightkeeper:8080"]}
workflow:
  orders: {processing_statuses: [paid], stuck_thresholds: [30m]}
server: {workflow_database_url_env: SHOP_DATABASE_URL, workflow_environment: beta}
"""
)


def _server_job(text: str) -> dict[str, Any]:
    config = yaml.safe_load(prometheus.render(parse_spec(text))["prometheus/prometheus.yml"])
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == prometheus.SERVER_JOB]
    return job


def test_the_server_job_labels_the_workflow_series_with_service_and_environment() -> None:
    relabel = _server_job(SAMPLED)["metric_relabel_configs"]
    assert [(r["target_label"], r["replacement"]) for r in relabel] == [
        ("service", "api"),
        ("environment", "beta"),
    ]
    assert all(r["source_labels"] == ["__name__"] and r["regex"] == "workflow_.*" for r in relabel)


def test_without_a_database_variable_the_server_samples_nothing_and_nothing_is_relabelled() -> None:
    text = SAMPLED.replace("workflow_database_url_env: SHOP_DATABASE_URL, ", "")
    assert "metric_relabel_configs" not in _server_job(text)
    assert parse_spec(text).workflow_sampled_environment() is None


def test_the_environment_defaults_to_the_first_and_must_exist() -> None:
    first = SAMPLED.replace(", workflow_environment: beta", "")
    assert parse_spec(first).workflow_sampled_environment() == "prod"
    with pytest.raises(SpecError, match=r"server\.workflow_environment names 'staging'"):
        parse_spec(SAMPLED.replace("workflow_environment: beta", "workflow_environment: staging"))
    with pytest.raises(SpecError, match="workflow_database_url_env"):
        parse_spec(SAMPLED.replace("SHOP_DATABASE_URL", "postgresql://u:p@db/app"))  # a URL, not a name


def test_the_kubernetes_server_monitor_relabels_alike() -> None:
    text = SAMPLED + "kubernetes: {namespace: observability}\n"
    files = kubernetes.render(parse_spec(text))
    found = [yaml.safe_load(t) for p, t in files.items() if p.startswith("kubernetes/")]
    endpoints = [
        e
        for d in found
        if d["kind"] in ("ServiceMonitor", "PodMonitor")
        for e in d["spec"].get("endpoints", d["spec"].get("podMetricsEndpoints", []))
        if e.get("honorLabels")
    ]
    assert endpoints, "no monitor for the server"
    (endpoint,) = endpoints
    assert [(r["targetLabel"], r["replacement"]) for r in endpoint["metricRelabelings"]] == [
        ("service", "api"),
        ("environment", "beta"),
    ]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="scripts/setup installs promtool")
def test_promtool_accepts_the_relabelled_server_job(tmp_path: Path) -> None:
    path = tmp_path / "prometheus.yml"
    path.write_text(prometheus.render(parse_spec(SAMPLED))["prometheus/prometheus.yml"])
    result = subprocess.run(
        ["promtool", "check", "config", "--syntax-only", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
