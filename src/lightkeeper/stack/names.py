"""Names shared by the generators: alert labels, categories, dashboards, links.

Rules, Alertmanager routing/inhibition, dashboards and runbooks all refer to each
other; keeping the shared vocabulary here means a rename happens in one place.
"""

from __future__ import annotations

from typing import Literal

from lightkeeper.spec.models import Spec

# Every generated alert carries exactly these labels (and SLO alerts also `slo`,
# `long_window`, `short_window`). Inhibition and routing may only match on them.
ALERT_LABELS: tuple[str, ...] = ("severity", "service", "environment", "category")

Category = Literal[
    "errors",
    "latency",
    "saturation",
    "database",
    "queue",
    "workflow",
    "cost",
    "telemetry",
    "slo",
    "meta",
    "synthetic",
    "product",
    "dependencies",
    "frontend",
]
# Symptoms a deploy or maintenance window explains away.
SYMPTOM_CATEGORIES: tuple[Category, ...] = ("errors", "latency", "slo")

# Alerts that announce planned disruption. MaintenanceWindow inhibits symptom alerts;
# DeploymentInProgress only informs; DeploymentGracePeriod (opt-in, bounded) inhibits the
# lower tiers for a short while after a new version appears.
DEPLOY_ALERT = "DeploymentInProgress"
DEPLOY_GRACE_ALERT = "DeploymentGracePeriod"
MAINTENANCE_ALERT = "MaintenanceWindow"
WATCHDOG_ALERT = "Watchdog"

# Scrape jobs, and the target label that tells Celery workers from the service's own
# instances (which carry no `component`), so ServiceDown never counts a live worker.
COMPONENT_LABEL = "component"
# The lightkeeper server's scrape job; its series carry `probe`, not the service's labels.
SERVER_JOB = "lightkeeper-server"
CELERY_COMPONENT = "celery-worker"


def scrape_job(spec: Spec, environment: str) -> str:
    return f"{spec.service}-{environment}"


def celery_job(spec: Spec, environment: str) -> str:
    return f"{spec.service}-{environment}-celery"


def scrapes_workers(spec: Spec) -> bool:
    return any(env.celery_targets for env in spec.environments.values())


# Host metrics: node-exporter, one job per environment, told apart from the service's own
# targets by `component` like the workers (ServiceDown must not count a live exporter).
NODE_COMPONENT = "node-exporter"
COMPOSE_NODE_TARGET = "node-exporter:9100"  # the compose overlay's service and its port


def node_job(spec: Spec, environment: str) -> str:
    return f"{spec.service}-{environment}-node"


def node_targets(spec: Spec, environment: str) -> list[str]:
    """The spec's `node_targets`, else the compose overlay's exporter where targets are static.

    A discovered environment runs somewhere the overlay does not (a cluster, a DNS-named
    fleet), so it gets host metrics only when it names its exporters.
    """
    env = spec.environments[environment]
    if env.node_targets is not None:
        return sorted(env.node_targets)
    return [] if env.discovers() else [COMPOSE_NODE_TARGET]


def scrapes_nodes(spec: Spec) -> bool:
    return any(node_targets(spec, env) for env in spec.environments)


# Every alert annotation set.
ALERT_ANNOTATIONS: tuple[str, ...] = ("summary", "description", "runbook_url", "dashboard_url")

DashboardKey = Literal[
    "system-health", "api-performance", "slos", "usage", "database-queue", "deployments", "llm-cost"
]
DASHBOARD_TITLES: dict[DashboardKey, str] = {
    "system-health": "System Health",
    "api-performance": "API Performance",
    "slos": "SLOs & Error Budget",
    "usage": "Usage",
    "database-queue": "Database & Queue",
    "llm-cost": "LLM Cost",
    "deployments": "Deployment Health",
}

# Fixed datasource uids so dashboards provision unattended (no __inputs).
DATASOURCE_UIDS = {"prometheus": "lk-prometheus", "loki": "lk-loki", "tempo": "lk-tempo"}


def dashboard_uid(spec: Spec, key: DashboardKey) -> str:
    """Stable per service, at most 40 characters (Grafana's limit)."""
    return f"lk-{spec.service}-{key}"[:40]


def dashboard_url(spec: Spec, key: DashboardKey) -> str:
    base = spec.dashboards.grafana_url.rstrip("/")
    return f"{base}/d/{dashboard_uid(spec, key)}"


def runbook_url(spec: Spec, alert_name: str) -> str:
    """The spec's own URL for this alert if given, else the generated runbook's address."""
    entry = spec.runbooks.alerts.get(alert_name)
    if entry is not None and entry.url:
        return entry.url
    base = spec.runbooks.base_url.rstrip("/")
    return f"{base}/{alert_name}.md" if base else f"runbooks/{alert_name}.md"
