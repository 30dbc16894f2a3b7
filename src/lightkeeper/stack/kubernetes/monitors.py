"""ServiceMonitor / PodMonitor resources: the operator's form of prometheus.yml's scrape jobs.

The operator names jobs and sets `service` from the Kubernetes Service, so the rules'
labels (`job`, `service`, `environment`, `component`) are set again by relabelling after
its own: every rule keeps working without the user labelling a single pod by hand.
"""

from __future__ import annotations

from typing import Any

from lightkeeper.spec.models import Spec
from lightkeeper.stack.kubernetes import placement
from lightkeeper.stack.kubernetes.placement import API_GROUP, Scrape
from lightkeeper.stack.kubernetes.secrets import secret_key
from lightkeeper.stack.profile import Profile


def scrapes(spec: Spec) -> list[Scrape]:
    found: list[Scrape] = []
    for env in sorted(spec.environments):
        found.append(placement.service_scrape(spec, env))
        workers = placement.celery_scrape(spec, env)
        if workers:
            found.append(workers)
    server = placement.server_scrape(spec)
    if server:
        found.append(server)
    return found


def resources(spec: Spec, profile: Profile) -> list[dict[str, Any]]:
    return [monitor(spec, profile, s) for s in scrapes(spec)]


def relabelings(scrape: Scrape) -> list[dict[str, Any]]:
    fixed = {"job": scrape.job, **scrape.labels}
    return [{"action": "replace", "targetLabel": k, "replacement": v} for k, v in fixed.items()]


def monitor(spec: Spec, profile: Profile, scrape: Scrape) -> dict[str, Any]:
    endpoint: dict[str, Any] = {"port": scrape.port, "relabelings": relabelings(scrape)}
    env = spec.environments.get(scrape.labels.get("environment", ""))
    interval = profile.scrape_interval or (env.scrape_interval if env else None)
    if interval:
        endpoint["interval"] = interval
    if env is None:  # the lightkeeper server: its series carry their own service and environment
        endpoint["honorLabels"] = True
        endpoint["path"] = "/metrics"
        sampled = spec.workflow_sampled_environment()
        if sampled is not None:  # ... but for the workflow it samples: as in prometheus.yml
            endpoint["metricRelabelings"] = [
                {
                    "action": "replace",
                    "sourceLabels": ["__name__"],
                    "regex": "workflow_.*",
                    "targetLabel": label,
                    "replacement": value,
                }
                for label, value in (("service", spec.service), ("environment", sampled))
            ]
    else:
        endpoint["path"] = env.metrics_path
        endpoint["scheme"] = env.scheme
        if env.bearer_token_file:
            endpoint["authorization"] = {
                "type": "Bearer",
                "credentials": {
                    "name": placement.section(spec).secret_name,
                    "key": secret_key(env.bearer_token_file, "environments.bearer_token_file"),
                },
            }
    endpoints = "endpoints" if scrape.kind == "ServiceMonitor" else "podMetricsEndpoints"
    return {
        "apiVersion": f"{API_GROUP}/v1",
        "kind": scrape.kind,
        "metadata": placement.metadata(spec, scrape.name, scrape.namespace),
        "spec": {
            "namespaceSelector": {"matchNames": [scrape.namespace]},
            "selector": {"matchLabels": scrape.selector},
            endpoints: [endpoint],
        },
    }
