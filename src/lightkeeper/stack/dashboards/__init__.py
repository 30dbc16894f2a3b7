"""Grafana dashboards: one module per dashboard, each a pure `build(spec) -> dict`."""

from __future__ import annotations

import json
from collections.abc import Callable

from lightkeeper.spec.models import Spec
from lightkeeper.stack.dashboards import (
    api_performance,
    database_queue,
    deployments,
    llm_cost,
    slos,
    system_health,
    usage,
)
from lightkeeper.stack.dashboards.panels import Json
from lightkeeper.stack.names import DASHBOARD_TITLES, DashboardKey

DASHBOARDS_DIR = "grafana/dashboards"
BUILDERS: dict[DashboardKey, Callable[[Spec], Json]] = {
    "system-health": system_health.build,
    "api-performance": api_performance.build,
    "slos": slos.build,
    "usage": usage.build,
    "database-queue": database_queue.build,
    "llm-cost": llm_cost.build,
    "deployments": deployments.build,
}
assert set(BUILDERS) == set(DASHBOARD_TITLES), "every dashboard named in stack.names needs a builder"


def to_json(dashboard: Json) -> str:
    return json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render(spec: Spec) -> dict[str, str]:
    """`grafana/dashboards/<key>.json` for every dashboard."""
    return {f"{DASHBOARDS_DIR}/{key}.json": to_json(build(spec)) for key, build in BUILDERS.items()}
