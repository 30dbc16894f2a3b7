"""The dashboard panel behind each alert, read from the generated dashboards themselves.

A runbook's first query and an alert's link must show what the on-call engineer will
see in Grafana, so both come from the built dashboard JSON: the panel is found by its
title (`runbook_content.yaml` names it), and its id and PromQL are whatever the
dashboard module produced. A renamed or moved panel cannot leave a stale copy behind;
a panel that is missing for some spec degrades to a link to the whole dashboard and
the alert's own expression.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from lightkeeper.spec.models import Spec
from lightkeeper.stack import dashboards, names, slo_rules
from lightkeeper.stack.names import DashboardKey
from lightkeeper.stack.rule_defs import AlertDef
from lightkeeper.stack.runbook_content import alert_text

# How the alert's environment reaches the panel link (a Prometheus template in annotations).
LABEL_TEMPLATE = "{{ $labels.environment }}"


@dataclass(frozen=True)
class Panel:
    """One panel of a generated dashboard, or the whole dashboard when `panel_id` is None."""

    dashboard: DashboardKey
    panel_id: int | None
    title: str
    exprs: tuple[str, ...]


def grafana_slug(title: str) -> str:
    """Grafana's own slug of a dashboard title (pkg/infra/slugify): `&` reads `and`.

    Grafana redirects a wrong slug, but a link that already carries the right one opens
    without a round trip and reads well in a notification.
    """
    return re.sub(r"[^a-z0-9]+", "-", title.lower().replace("&", "and")).strip("-")


# The dashboards of the spec last asked about: every alert of one generation asks again.
_built: list[tuple[Spec, dict[DashboardKey, dict[str, Any]]]] = []


def _dashboard(spec: Spec, key: DashboardKey) -> dict[str, Any]:
    if not _built or _built[0][0] is not spec:
        _built[:] = [(spec, {})]
    cache = _built[0][1]
    if key not in cache:
        cache[key] = dashboards.BUILDERS[key](spec)
    return cache[key]


def _panels(spec: Spec, key: DashboardKey) -> list[dict[str, Any]]:
    return list(_dashboard(spec, key)["panels"])


def slo_row(spec: Spec, alert: AlertDef) -> str | None:
    """The SLO an alert belongs to: SLO dashboards repeat panel titles once per SLO."""
    for slo in spec.slos:
        if alert.slo == slo.name or alert.name in (
            slo_rules.slo_burn_alert(slo),
            slo_rules.slo_no_data_alert(slo),
        ):
            return slo.name
    return None


def _search(spec: Spec, key: DashboardKey, title: str, slo: str | None) -> Panel | None:
    in_row = slo is None
    for panel in _panels(spec, key):
        if panel["type"] == "row":
            in_row = slo is None or str(panel["title"]).startswith(f"{slo}:")
            continue
        if in_row and panel["title"] == title:
            exprs = tuple(str(t["expr"]) for t in panel.get("targets", ()))
            return Panel(key, int(panel["id"]), title, exprs)
    return None


def alert_panel(spec: Spec, alert: AlertDef) -> Panel:
    """The panel named for the alert's family: its dashboard first, then any other."""
    text = alert_text(alert)
    preferred: DashboardKey = text.dashboard or alert.dashboard
    slo = slo_row(spec, alert)
    for key in (preferred, *(k for k in dashboards.BUILDERS if k != preferred)):
        found = _search(spec, key, text.panel, slo)
        if found is not None:
            return found
    return Panel(alert.dashboard, None, names.DASHBOARD_TITLES[alert.dashboard], ())


def dashboard_title(spec: Spec, key: DashboardKey) -> str:
    return str(_dashboard(spec, key)["title"])


def url(spec: Spec, panel: Panel, environment: str | None, variables: Mapping[str, str] | None = None) -> str:
    """Grafana's link to the panel alone, with the service and environment variables set.

    `environment` is written as given (a value, or a Prometheus template), None leaves
    the dashboard's default (every environment); `variables` sets the dashboard's own.
    """
    base = names.dashboard_url(spec, panel.dashboard)
    params = [f"var-service={quote(spec.service, safe='')}"]
    if environment is not None:
        params.append(f"var-environment={environment}")
    params += [f"var-{k}={quote(v, safe='')}" for k, v in sorted((variables or {}).items())]
    if panel.panel_id is not None:
        params.append(f"viewPanel={panel.panel_id}")
    return f"{base}/{grafana_slug(dashboard_title(spec, panel.dashboard))}?{'&'.join(params)}"


def label_environments(spec: Spec, alert: AlertDef) -> list[str] | None:
    """The environments an alert can fire for; None when it carries no real environment.

    The lightkeeper server's probes belong to no environment, and the Watchdog watches
    the whole pipeline: their links and silences leave the environment open.
    """
    if alert.category == "synthetic":
        return None
    if alert.environments:
        real = [e for e in alert.environments if e in spec.environments]
        return real or None
    return sorted(spec.environments)


def annotation_url(spec: Spec, alert: AlertDef) -> str:
    """The `dashboard_url` annotation: the panel, with the firing alert's environment selected."""
    envs = label_environments(spec, alert)
    if envs is None:
        environment = None
    elif len(alert.environments) == 1:
        environment = quote(envs[0], safe="")
    else:
        environment = LABEL_TEMPLATE
    return url(spec, alert_panel(spec, alert), environment)
