"""Grafana dashboard JSON, built from plain dicts in the current schema (schemaVersion 39).

Panels are written without `id` and `gridPos.x/y`; `layout` assigns both in reading
order, so a dashboard module is just a list of panels and rows. Every panel and
query names its datasource through a dashboard variable (`${datasource}`, `${logs}`)
whose default is the provisioned uid of `names.DATASOURCE_UIDS`: provisioning needs no
`__inputs` and no click, and the same JSON imported into an existing Grafana picks that
Grafana's own Prometheus and Loki from a drop-down (Grafana falls back to the default
datasource of the type when the uid is unknown). Alert thresholds become panel thresholds: the value most
environments share is the default, and an environment with its own value gets a
field override matched on the legend, which always starts with the environment.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lightkeeper import catalogue as cat
from lightkeeper.spec.models import SEVERITIES, Severity, Spec
from lightkeeper.stack import names, promql
from lightkeeper.stack.alert_families import FAMILY_BY_KEY
from lightkeeper.stack.thresholds import family_thresholds

SCHEMA_VERSION = 39
GRID_WIDTH = 24
# Dashboard variable names, per datasource type a dashboard reads.
DATASOURCE_VARIABLES: dict[str, str] = {"prometheus": "datasource", "loki": "logs"}
_DATASOURCE_LABELS = {"prometheus": "Prometheus", "loki": "Loki"}
PROMETHEUS: dict[str, str] = {"type": "prometheus", "uid": "${datasource}"}
LOKI: dict[str, str] = {"type": "loki", "uid": "${logs}"}

SEVERITY_COLORS: dict[Severity, str] = {
    "low": "blue",
    "medium": "yellow",
    "high": "orange",
    "critical": "red",
}
# Families whose rule fires when the value drops *below* the threshold.
LOWER_IS_WORSE = frozenset({"celery_workers_min", "tls_expiry_days", "usage_quiet_ratio"})

Json = dict[str, Any]


@dataclass(frozen=True)
class Query:
    """One PromQL or LogQL query of a panel."""

    expr: str
    legend: str = ""
    instant: bool = False
    exemplar: bool = False
    table: bool = False


@dataclass(frozen=True)
class Thresholds:
    steps: list[Json]
    overrides: list[Json]


# --- thresholds ----------------------------------------------------------------------
def _steps(tiers: dict[Severity, float], lower_is_worse: bool) -> list[Json]:
    ordered = sorted(tiers.items(), key=lambda kv: (kv[1], SEVERITIES.index(kv[0])))
    if not lower_is_worse:
        steps: list[Json] = [{"color": "green", "value": None}]
        steps.extend({"color": SEVERITY_COLORS[sev], "value": value} for sev, value in ordered)
        return steps
    # Worst (lowest) tier colours everything below the next threshold; healthy from the highest up.
    steps = [{"color": SEVERITY_COLORS[ordered[0][0]], "value": None}]
    for i, (_sev, value) in enumerate(ordered):
        color = SEVERITY_COLORS[ordered[i + 1][0]] if i + 1 < len(ordered) else "green"
        steps.append({"color": color, "value": value})
    return steps


def env_matcher(env: str) -> Json:
    """Fields whose display name (legend) starts with this environment."""
    return {"id": "byRegexp", "options": f"^{re.escape(env)}( .*)?$"}


def alert_thresholds(spec: Spec, family_key: str) -> Thresholds | None:
    """The alert family's thresholds as panel thresholds, per environment where they differ."""
    family = FAMILY_BY_KEY[family_key]
    if family.thresholdless:
        return None
    by_severity = family_thresholds(spec, family)
    if not by_severity:
        return None
    per_env: dict[str, dict[Severity, float]] = {}
    for severity, by_env in by_severity.items():
        for env, value in by_env.items():
            per_env.setdefault(env, {})[severity] = value
    lower = family_key in LOWER_IS_WORSE
    env_steps = {env: _steps(tiers, lower) for env, tiers in sorted(per_env.items())}
    keyed = {env: repr(steps) for env, steps in env_steps.items()}
    counts = Counter(keyed.values())
    # Most environments win; on a tie, the environments that keep the spec-wide values.
    plain = {env for env in env_steps if family_key not in spec.environments[env].thresholds}
    default_env = min(env_steps, key=lambda env: (-counts[keyed[env]], env not in plain, env))
    default_key, default = keyed[default_env], env_steps[default_env]
    overrides = [
        {
            "matcher": env_matcher(env),
            "properties": [{"id": "thresholds", "value": {"mode": "absolute", "steps": steps}}],
        }
        for env, steps in env_steps.items()
        if keyed[env] != default_key
    ]
    return Thresholds(default, overrides)


def threshold_note(spec: Spec, family_key: str) -> str:
    """A sentence naming the alert thresholds, for panel descriptions."""
    family = FAMILY_BY_KEY[family_key]
    by_severity = family_thresholds(spec, family)
    if family.thresholdless or not by_severity:
        return f"Alert {family.alert} fires on this signal." if by_severity else ""
    parts = []
    for severity, by_env in by_severity.items():
        values = sorted(set(by_env.values()))
        if len(values) == 1:
            parts.append(f"{severity} {_fmt(values[0])}")
        else:
            each = ", ".join(f"{env} {_fmt(v)}" for env, v in sorted(by_env.items()))
            parts.append(f"{severity} ({each})")
    return f"Alert {family.alert} thresholds: {'; '.join(parts)}."


def _fmt(value: float) -> str:
    return promql.number(value)


def fixed_thresholds(*steps: tuple[str, float | None]) -> Thresholds:
    return Thresholds([{"color": color, "value": value} for color, value in steps], [])


# --- targets -------------------------------------------------------------------------
def _targets(queries: Sequence[Query], datasource: Json) -> list[Json]:
    out = []
    for i, q in enumerate(queries):
        target: Json = {"datasource": datasource, "expr": q.expr, "refId": chr(ord("A") + i)}
        if datasource is PROMETHEUS:
            target.update(
                {
                    "editorMode": "code",
                    "legendFormat": q.legend or "__auto",
                    "range": not q.instant,
                    "instant": q.instant,
                    "exemplar": q.exemplar,
                    "format": "table" if q.table else "time_series",
                }
            )
        else:
            target.update({"editorMode": "code", "queryType": "range"})
        out.append(target)
    return out


def _field_config(unit: str, thresholds: Thresholds | None, custom: Json | None, **extra: Any) -> Json:
    steps = thresholds.steps if thresholds else [{"color": "green", "value": None}]
    defaults: Json = {
        "unit": unit,
        "thresholds": {"mode": "absolute", "steps": steps},
        "mappings": [],
        **extra,
    }
    if custom is not None:
        defaults["custom"] = custom
    return {"defaults": defaults, "overrides": list(thresholds.overrides) if thresholds else []}


def _panel(kind: str, title: str, description: str, w: int, h: int, datasource: Json) -> Json:
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": datasource,
        "gridPos": {"w": w, "h": h},
    }


# --- panel kinds ---------------------------------------------------------------------
def timeseries(
    title: str,
    queries: Sequence[Query],
    *,
    unit: str = "short",
    description: str = "",
    thresholds: Thresholds | None = None,
    w: int = 12,
    h: int = 8,
    stack: bool = False,
    min_zero: bool = True,
) -> Json:
    custom: Json = {
        "drawStyle": "line",
        "lineWidth": 1,
        "fillOpacity": 10,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "thresholdsStyle": {"mode": "dashed" if thresholds else "off"},
    }
    extra: Json = {"color": {"mode": "palette-classic"}}
    if min_zero:
        extra["min"] = 0
    panel = _panel("timeseries", title, description, w, h, PROMETHEUS)
    panel["fieldConfig"] = _field_config(unit, thresholds, custom, **extra)
    panel["options"] = {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    panel["targets"] = _targets(queries, PROMETHEUS)
    return panel


def stat(
    title: str,
    queries: Sequence[Query],
    *,
    unit: str = "short",
    description: str = "",
    thresholds: Thresholds | None = None,
    w: int = 6,
    h: int = 4,
    decimals: int | None = None,
    mappings: list[Json] | None = None,
) -> Json:
    extra: Json = {"color": {"mode": "thresholds"}}
    if decimals is not None:
        extra["decimals"] = decimals
    panel = _panel("stat", title, description, w, h, PROMETHEUS)
    panel["fieldConfig"] = _field_config(unit, thresholds, None, **extra)
    if mappings:
        panel["fieldConfig"]["defaults"]["mappings"] = mappings
    panel["options"] = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "background" if thresholds else "value",
        "graphMode": "area",
        "justifyMode": "auto",
        "orientation": "auto",
        "textMode": "auto",
        "wideLayout": True,
        "showPercentChange": False,
    }
    panel["targets"] = _targets(queries, PROMETHEUS)
    return panel


def gauge(
    title: str,
    queries: Sequence[Query],
    *,
    unit: str = "percentunit",
    description: str = "",
    thresholds: Thresholds | None = None,
    w: int = 6,
    h: int = 6,
    minimum: float = 0,
    maximum: float = 1,
) -> Json:
    panel = _panel("gauge", title, description, w, h, PROMETHEUS)
    panel["fieldConfig"] = _field_config(
        unit, thresholds, None, color={"mode": "thresholds"}, min=minimum, max=maximum
    )
    panel["options"] = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "showThresholdLabels": False,
        "showThresholdMarkers": True,
        "orientation": "auto",
        "minVizHeight": 75,
        "minVizWidth": 75,
        "sizing": "auto",
    }
    panel["targets"] = _targets(queries, PROMETHEUS)
    return panel


def table(
    title: str,
    queries: Sequence[Query],
    *,
    unit: str = "short",
    description: str = "",
    w: int = 12,
    h: int = 8,
    hide: Sequence[str] = ("Time",),
) -> Json:
    panel = _panel("table", title, description, w, h, PROMETHEUS)
    panel["fieldConfig"] = _field_config(unit, None, {"align": "auto", "cellOptions": {"type": "auto"}})
    panel["options"] = {
        "showHeader": True,
        "cellHeight": "sm",
        "footer": {"show": False, "reducer": ["sum"], "countRows": False, "fields": ""},
    }
    panel["targets"] = _targets(queries, PROMETHEUS)
    panel["transformations"] = [
        {
            "id": "organize",
            "options": {"excludeByName": dict.fromkeys(hide, True), "indexByName": {}, "renameByName": {}},
        }
    ]
    return panel


def logs(title: str, expr: str, *, description: str = "", w: int = 24, h: int = 10) -> Json:
    panel = _panel("logs", title, description, w, h, LOKI)
    panel["options"] = {
        "showTime": True,
        "showLabels": False,
        "showCommonLabels": False,
        "wrapLogMessage": True,
        "prettifyLogMessage": False,
        "enableLogDetails": True,
        "dedupStrategy": "none",
        "sortOrder": "Descending",
    }
    panel["targets"] = _targets([Query(expr)], LOKI)
    return panel


def row(title: str) -> Json:
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "panels": [],
        "gridPos": {"w": GRID_WIDTH, "h": 1},
    }


def up_down_mappings() -> list[Json]:
    return [
        {
            "type": "value",
            "options": {
                "0": {"text": "DOWN", "color": "red", "index": 0},
                "1": {"text": "UP", "color": "green", "index": 1},
            },
        }
    ]


# --- layout and dashboard ------------------------------------------------------------
def layout(panels: Sequence[Json]) -> list[Json]:
    """Assign ids and x/y left to right, wrapping at 24 columns; rows start a new line."""
    placed: list[Json] = []
    x = y = line_height = 0
    for number, source in enumerate(panels, start=1):
        panel = {**source, "gridPos": dict(source["gridPos"])}
        w, h = panel["gridPos"]["w"], panel["gridPos"]["h"]
        if panel["type"] == "row" or x + w > GRID_WIDTH:
            y, x, line_height = y + line_height, 0, 0
        panel["gridPos"].update({"x": x, "y": y})
        panel["id"] = number
        if panel["type"] == "row":
            y += h
        else:
            x += w
            line_height = max(line_height, h)
        placed.append(panel)
    return placed


def service_variable(spec: Spec) -> Json:
    query = f"label_values({cat.UP.name}, service)"
    return _query_variable("service", "Service", query, spec.service, multi=False)


def environment_variable() -> Json:
    query = f'label_values({cat.UP.name}{{service="$service"}}, environment)'
    return _query_variable("environment", "Environment", query, None, multi=True)


def _query_variable(name: str, label: str, query: str, current: str | None, *, multi: bool) -> Json:
    variable: Json = {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": PROMETHEUS,
        "definition": query,
        "query": query,  # the classic string form: every Grafana version reads it as is
        "refresh": 2,
        "regex": "",
        "sort": 1,
        "hide": 0,
        "multi": multi,
        "includeAll": multi,
        "options": [],
        "skipUrlSync": False,
    }
    if multi:
        variable["allValue"] = ".*"
        variable["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    else:
        variable["current"] = {"selected": False, "text": current, "value": current}
    return variable


def datasource_variable(kind: str) -> Json:
    """Pick the `kind` datasource at view time; the provisioned one by default."""
    uid = names.DATASOURCE_UIDS[kind]
    return {
        "type": "datasource",
        "name": DATASOURCE_VARIABLES[kind],
        "label": _DATASOURCE_LABELS[kind],
        "query": kind,
        "current": {"selected": False, "text": _DATASOURCE_LABELS[kind], "value": uid},
        "options": [],
        "refresh": 1,
        "regex": "",
        "hide": 0,
        "multi": False,
        "includeAll": False,
        "skipUrlSync": False,
    }


def datasource_kinds(panels: Sequence[Json]) -> list[str]:
    """The datasource types the panels read, Prometheus first (the other variables query it)."""
    used = {p["datasource"]["type"] for p in panels if "datasource" in p}
    return ["prometheus", *sorted(used & set(DATASOURCE_VARIABLES) - {"prometheus"})]


def custom_variable(
    name: str, label: str, values: Sequence[str], current: str, description: str = ""
) -> Json:
    return {
        "type": "custom",
        "name": name,
        "label": label,
        "description": description,
        "query": ",".join(values),
        "current": {"selected": True, "text": current, "value": current},
        "options": [{"selected": v == current, "text": v, "value": v} for v in values],
        "hide": 0,
        "multi": False,
        "includeAll": False,
        "skipUrlSync": False,
    }


ANNOTATION_STEP = "1m"  # the deploy markers' resolution, and the offset their queries compare with


def deploy_annotations(spec: Spec) -> list[Json]:
    """Deploy markers for every dashboard: a new version reporting, and CI's finished deploys.

    Each query is evaluated once a minute, and a marker is where the value changed in the
    minute before, so every change is marked once. A version counts as new in an
    environment when no instance reported it a minute earlier (`on` leaves out
    `instance`, so scaling out is not a deploy). The server's counters appear at their
    first deploy of a status with 1 already, hence `unless ... offset` beside the delta.
    """
    step = ANNOTATION_STEP
    info = promql.selector(
        cat.BUILD_INFO, [("service", "=", "$service"), ("environment", "=~", "$environment")]
    )
    on = "on (service, environment, version)"
    found: list[Json] = [
        _annotation(
            "New version",
            f"count by (environment, version) ({info} unless {on} {info} offset {step})",
            "{{environment}}: version {{version}} reports",
            "environment,version",
            "purple",
        )
    ]
    if spec.prometheus.server_targets and cat.DEPLOYMENTS.emitted:
        done = promql.selector(
            cat.DEPLOYMENTS, [("job", "=", names.SERVER_JOB), ("env", "=~", "$environment")]
        )
        grouped = "sum by (env, component, status)"
        found.append(
            _annotation(
                "Deployments (CI)",
                f"{grouped} ({done} - {done} offset {step} > 0 or ({done} unless {done} offset {step}))",
                "{{env}}: {{component}} deploy finished ({{status}})",
                "env,component,status",
                "orange",
            )
        )
    return found


def _annotation(name: str, expr: str, title: str, tags: str, color: str) -> Json:
    return {
        "datasource": PROMETHEUS,
        "enable": True,
        "hide": False,
        "iconColor": color,
        "name": name,
        "expr": expr,
        "step": ANNOTATION_STEP,
        "titleFormat": title,
        "tagKeys": tags,
        "textFormat": "",
        "useValueForTime": False,
    }


def dashboard(
    spec: Spec,
    key: names.DashboardKey,
    panels: Sequence[Json],
    *,
    description: str,
    variables: Sequence[Json] = (),
) -> Json:
    """A complete dashboard: fixed uid, datasource/service/environment variables, links to its siblings."""
    return {
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                },
                *deploy_annotations(spec),
            ]
        },
        "description": description,
        "editable": False,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [
            {
                "asDropdown": True,
                "icon": "external link",
                "includeVars": True,
                "keepTime": True,
                "tags": ["lightkeeper", spec.service],
                "targetBlank": False,
                "title": "Lightkeeper",
                "type": "dashboards",
            }
        ],
        "panels": layout(panels),
        "refresh": spec.dashboards.refresh,
        "schemaVersion": SCHEMA_VERSION,
        "tags": ["lightkeeper", spec.service],
        "templating": {
            "list": [
                *(datasource_variable(kind) for kind in datasource_kinds(panels)),
                service_variable(spec),
                environment_variable(),
                *variables,
            ]
        },
        "time": {"from": spec.dashboards.time_from, "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": f"{names.DASHBOARD_TITLES[key]} ({spec.service})",
        "uid": names.dashboard_uid(spec, key),
        "version": 1,
        "weekStart": "",
    }
