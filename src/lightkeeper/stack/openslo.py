"""SLOs to and from OpenSLO v1.

OpenSLO describes an SLI as PromQL queries and one lookback window per alert
condition, so two things travel in `metadata.annotations` under `lightkeeper.dev/`:
the SLI as Lightkeeper reads it (kind, routes, threshold, bad status set) and the
alerting block as the spec wrote it (custom tiers included, even those `page: false`
switches off), with the resolved multi-window burn-rate tiers as JSON for other
readers. An export therefore imports back equal to the spec's SLO, and other
OpenSLO tools still get real ratio queries they can run.

A document without those annotations is mapped from its queries when they read
Lightkeeper's own metrics (a `status_code` matcher makes an availability SLI, an
`le` matcher a latency SLI, `db_errors_total` a database SLI, `deployments_total` a
deployment SLI); anything else is refused with the query named.
"""

from __future__ import annotations

import json
from typing import Any

import promql_parser
import yaml

from lightkeeper import catalogue as cat
from lightkeeper.spec import sli_events
from lightkeeper.spec.models import (
    SLO,
    AvailabilitySLI,
    DatabaseSLI,
    DeploymentSLI,
    LatencySLI,
    Spec,
    duration_seconds,
)
from lightkeeper.stack import names, promql, sli_queries
from lightkeeper.stack.slo import tier_data

API_VERSION = "openslo/v1"
PREFIX = "lightkeeper.dev/"
_CALENDAR_START = "2024-01-01 00:00:00"


class OpenSLOError(ValueError):
    """The OpenSLO input cannot be mapped to a Lightkeeper SLO; `line` is 1-based, 0 when unknown.

    The position is kept apart from the message so the caller can prefix its own file name
    (the parser only ever sees text).
    """

    def __init__(self, message: str, line: int = 0, column: int = 0) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


# --- export ---------------------------------------------------------------------------------
def _routes(spec: Spec, slo: SLO) -> list[str] | None:
    if slo.sli.route_group is not None:
        return list(spec.route_groups[slo.sli.route_group])
    return list(slo.sli.routes) if slo.sli.routes else None


def _matchers(spec: Spec, slo: SLO) -> str:
    found: list[promql.Matcher] = [("service", "=", spec.service)]
    routes = _routes(spec, slo)
    if routes:
        found.append(promql.in_matcher("route", routes))
    return ",".join(f"{k}{op}{promql.quote(v)}" for k, op, v in found)


def _queries(spec: Spec, slo: SLO) -> dict[str, Any]:
    m = _matchers(spec, slo)
    if isinstance(slo.sli, DatabaseSLI | DeploymentSLI):
        return _table_queries(spec, slo)
    if isinstance(slo.sli, AvailabilitySLI):
        total = f"sum(rate({cat.HTTP_REQUESTS.name}{{{m}}}[5m]))"
        bad = (
            f"sum(rate({cat.HTTP_REQUESTS.name}{{{m},status_code=~{promql.quote(slo.sli.bad_status)}}}[5m]))"
        )
        return {"counter": True, "bad": _source(bad), "total": _source(total)}
    if not isinstance(slo.sli, LatencySLI):
        raise TypeError(f"SLO {slo.name!r}: {slo.sli.kind} SLIs have no OpenSLO query")
    le = promql.le_label(slo.sli.threshold_seconds)
    name = cat.HTTP_REQUEST_DURATION.name
    good = f"sum(rate({name}_bucket{{{m},le={promql.quote(le)}}}[5m]))"
    total = f"sum(rate({name}_count{{{m}}}[5m]))"
    return {"counter": True, "good": _source(good), "total": _source(total)}


def _table_queries(spec: Spec, slo: SLO) -> dict[str, Any]:
    """The kind table's parts as OpenSLO ratio queries, across every environment."""
    events = sli_events.events(slo.sli, _routes(spec, slo))
    scope: list[promql.Matcher] = (
        [("service", "=", spec.service)] if events.scope == "service" else [("job", "=", names.SERVER_JOB)]
    )

    def query(part: sli_events.Part) -> dict[str, Any]:
        return _source(f"sum(rate({sli_queries.part_selector(part, scope)}[5m]))")

    if events.bad is not None:
        return {"counter": True, "bad": query(events.bad), "total": query(events.total)}
    assert events.good is not None
    return {"counter": True, "good": query(events.good), "total": query(events.total)}


def _source(query: str) -> dict[str, Any]:
    return {"metricSource": {"type": "Prometheus", "spec": {"query": query}}}


def _time_window(period: str) -> dict[str, Any]:
    if period == "calendar_month":
        return {
            "duration": "1M",
            "isRolling": False,
            "calendar": {"startTime": _CALENDAR_START, "timeZone": "UTC"},
        }
    return {"duration": period, "isRolling": True}


def _annotations(spec: Spec, slo: SLO) -> dict[str, str]:
    sli: dict[str, Any] = {"kind": slo.sli.kind}
    if slo.sli.routes is not None:  # [] and None both mean the whole service, but the spec said which
        sli["routes"] = list(slo.sli.routes)
    if slo.sli.route_group:
        sli["route_group"] = slo.sli.route_group
        sli["route_group_routes"] = list(spec.route_groups[slo.sli.route_group])
    if isinstance(slo.sli, AvailabilitySLI):
        sli["bad_status"] = slo.sli.bad_status
    elif isinstance(slo.sli, LatencySLI):
        sli["threshold_seconds"] = slo.sli.threshold_seconds
    elif isinstance(slo.sli, DeploymentSLI) and slo.sli.components is not None:
        sli["components"] = list(slo.sli.components)
    tiers = [
        {
            "name": t.name,
            "long_window": t.long_window,
            "short_window": t.short_window,
            "budget_share": t.budget_share,
            "severity": t.severity,
            "for": t.for_,
        }
        for t in tier_data(slo)
    ]
    # The spec's own alerting block: `burn-rate-tiers` above is what generates (filtered by
    # page/ticket, `for` defaulted), so it cannot give the custom tiers back.
    alerting = slo.alerting.model_dump(mode="json", by_alias=True)
    return {
        f"{PREFIX}sli": json.dumps(sli, sort_keys=True),
        f"{PREFIX}burn-rate-tiers": json.dumps(tiers, sort_keys=True),
        f"{PREFIX}alerting": json.dumps(alerting, sort_keys=True),
        f"{PREFIX}objective-percent": promql.number(slo.objective),
    }


def export_documents(spec: Spec) -> list[dict[str, Any]]:
    """One SLI and one SLO document per SLO, in spec order."""
    docs: list[dict[str, Any]] = []
    for slo in spec.slos:
        if not sli_events.is_metric(slo.sli):
            continue  # a probe SLI: computed by the server from its probes; no metric query to export
        sli_name = f"{slo.name}-sli"
        docs.append(
            {
                "apiVersion": API_VERSION,
                "kind": "SLI",
                "metadata": {"name": sli_name, "displayName": f"{slo.name} ({slo.sli.kind})"},
                "spec": {"ratioMetric": _queries(spec, slo)},
            }
        )
        docs.append(
            {
                "apiVersion": API_VERSION,
                "kind": "SLO",
                "metadata": {
                    "name": slo.name,
                    "displayName": slo.name,
                    "annotations": _annotations(spec, slo),
                },
                "spec": {
                    "description": slo.description,
                    "service": spec.service,
                    "indicatorRef": sli_name,
                    "timeWindow": [_time_window(slo.period)],
                    "budgetingMethod": "Occurrences",
                    "objectives": [{"displayName": slo.name, "target": float(_target(slo.objective))}],
                },
            }
        )
    return docs


def _target(objective_percent: float) -> str:
    return promql.number(promql.decimal(objective_percent) / 100)


def export_yaml(spec: Spec) -> str:
    return yaml.safe_dump_all(export_documents(spec), sort_keys=False, allow_unicode=True, width=10_000)


# --- import ---------------------------------------------------------------------------------
def import_documents(
    docs: list[dict[str, Any]], service: str | None = None
) -> tuple[list[SLO], dict[str, list[str]]]:
    """Lightkeeper SLOs (and the route groups they need) from OpenSLO SLO and SLI documents."""
    slis = {
        str(d.get("metadata", {}).get("name")): d.get("spec", {})
        for d in docs
        if isinstance(d, dict) and d.get("kind") == "SLI"
    }
    slos: list[SLO] = []
    groups: dict[str, list[str]] = {}
    for doc in docs:
        if not isinstance(doc, dict) or doc.get("kind") != "SLO":
            continue
        if doc.get("apiVersion") != API_VERSION:
            raise OpenSLOError(
                f"SLO {doc.get('metadata', {}).get('name')!r}: only apiVersion {API_VERSION} is supported"
            )
        spec = doc.get("spec") or {}
        if service is not None and spec.get("service") != service:
            continue
        slo, group = _import_slo(doc, slis)
        slos.append(slo)
        if group is not None:
            groups[group[0]] = group[1]
    if not slos:
        raise OpenSLOError("no SLO documents found (kind: SLO, apiVersion: openslo/v1)")
    return slos, groups


def _import_slo(doc: dict[str, Any], slis: dict[str, Any]) -> tuple[SLO, tuple[str, list[str]] | None]:
    meta = doc.get("metadata") or {}
    name = str(meta.get("name", ""))
    spec = doc.get("spec") or {}
    annotations = meta.get("annotations") or {}
    objectives = spec.get("objectives") or []
    if not objectives or "target" not in objectives[0]:
        raise OpenSLOError(f"SLO {name!r} has no objectives[0].target")
    objective = annotations.get(f"{PREFIX}objective-percent") or _percent(objectives[0]["target"])
    period = _period(name, spec.get("timeWindow") or [])
    group: tuple[str, list[str]] | None = None
    if f"{PREFIX}sli" in annotations:
        sli_data = json.loads(annotations[f"{PREFIX}sli"])
        if "route_group_routes" in sli_data:
            group = (sli_data["route_group"], list(sli_data.pop("route_group_routes")))
    else:
        indicator = (
            spec.get("indicator", {}).get("spec")
            if spec.get("indicator")
            else slis.get(str(spec.get("indicatorRef")))
        )
        if indicator is None:
            raise OpenSLOError(
                f"SLO {name!r} names SLI {spec.get('indicatorRef')!r}, which is not in the file"
            )
        sli_data = _sli_from_queries(name, indicator)
    data: dict[str, Any] = {
        "name": name,
        "objective": float(objective),
        "period": period,
        "description": spec.get("description") or "",
        "sli": sli_data,
    }
    if f"{PREFIX}alerting" in annotations:
        alerting = json.loads(annotations[f"{PREFIX}alerting"])
        # Exports before the alerting block carried its tiers only flagged them as custom.
        custom = alerting.pop("custom_tiers", False)
        if custom and "tiers" not in alerting and f"{PREFIX}burn-rate-tiers" in annotations:
            alerting["tiers"] = json.loads(annotations[f"{PREFIX}burn-rate-tiers"])
        data["alerting"] = alerting
    try:
        return SLO.model_validate(data), group
    except ValueError as exc:
        raise OpenSLOError(f"SLO {name!r} does not map to a valid Lightkeeper SLO: {exc}") from None


def _percent(target: Any) -> str:
    return promql.number(promql.decimal(float(target)) * 100)


def _period(name: str, windows: list[dict[str, Any]]) -> str:
    if len(windows) != 1:
        raise OpenSLOError(f"SLO {name!r} needs exactly one timeWindow")
    window = windows[0]
    duration = str(window.get("duration", ""))
    if not window.get("isRolling", False):
        if duration == "1M":
            return "calendar_month"
        raise OpenSLOError(f"SLO {name!r}: calendar windows other than one month (1M) are not supported")
    try:
        duration_seconds(duration)
    except ValueError:
        raise OpenSLOError(
            f"SLO {name!r}: rolling window {duration!r} is not a duration such as 28d or 30d"
        ) from None
    return duration


def _selectors(query: str) -> list[Any]:
    try:
        expr = promql_parser.parse(query)
    except ValueError as exc:
        raise OpenSLOError(f"query {query!r} does not parse: {exc}") from None
    found: list[Any] = []
    promql_parser.walk(
        expr, pre_visit=lambda n: found.append(n) if isinstance(n, promql_parser.VectorSelector) else None
    )
    return found


def _names(sel: Any) -> set[str]:
    """The metric names a selector reads: its own, or those a `__name__` matcher lists."""
    found = {sel.name} if sel.name else set()
    for m in sel.matchers.matchers:
        if m.name == "__name__":
            found.update(m.value.replace("\\", "").split("|"))
    return found


def _sli_from_queries(name: str, indicator: dict[str, Any]) -> dict[str, Any]:
    ratio = indicator.get("ratioMetric") or {}
    queries = {
        key: ratio[key]["metricSource"]["spec"]["query"]
        for key in ("good", "bad", "total")
        if isinstance(ratio.get(key), dict) and "metricSource" in ratio[key]
    }
    sli: dict[str, Any] = {}
    for query in queries.values():
        for sel in _selectors(query):
            metrics = _names(sel)
            if cat.DEPLOYMENTS.name in metrics:
                sli["kind"] = "deployment"
            elif cat.DB_ERRORS.name in metrics:
                sli["kind"] = "database"
            for m in sel.matchers.matchers:
                if m.name == "component" and sli.get("kind") == "deployment":
                    sli["components"] = m.value.replace("\\", "").split("|")
                if m.name == "route":
                    sli["routes"] = m.value.replace("\\", "").split("|")
                elif m.name == "status_code" and sel.name == cat.HTTP_REQUESTS.name:
                    sli["kind"], sli["bad_status"] = "availability", m.value
                elif m.name == "le" and sel.name == f"{cat.HTTP_REQUEST_DURATION.name}_bucket":
                    sli["kind"], sli["threshold_seconds"] = "latency", float(m.value)
    if "kind" not in sli:
        raise OpenSLOError(
            f"SLO {name!r}: cannot map its queries ({'; '.join(queries.values()) or 'none'}) to a "
            "Lightkeeper SLI; Lightkeeper reads http_requests_total (availability), "
            "http_request_duration_seconds (latency), db_errors_total (database) or deployments_total "
            "(deployment). Write the SLO in lightkeeper.yaml by hand with `sli: {kind: availability}` or "
            "another kind"
        )
    return sli


def import_yaml(text: str, service: str | None = None) -> str:
    """The `route_groups:` and `slos:` YAML for lightkeeper.yaml."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise OpenSLOError(
            f"not valid YAML ({exc.problem or exc.context}); check indentation and quoting", line, column
        ) from None
    except yaml.YAMLError as exc:
        raise OpenSLOError(f"not valid YAML ({exc.__class__.__name__})") from None
    slos, groups = import_documents(docs, service)
    out: dict[str, Any] = {}
    if groups:
        out["route_groups"] = groups
    out["slos"] = [s.model_dump(mode="json", by_alias=True, exclude_defaults=True) for s in slos]
    return yaml.safe_dump(out, sort_keys=False, allow_unicode=True, width=10_000)
