"""Usage: business events, sign-ins, workflow health and web performance.

A section appears only once something emits its signals (and, for workflow health,
once the spec declares workflow entities): a row of "No data" panels teaches people
to ignore the dashboard. LLM spend has a dashboard of its own (`llm_cost`).
"""

from __future__ import annotations

from lightkeeper import catalogue as cat
from lightkeeper.spec.models import Spec
from lightkeeper.stack.dashboards import panels as p
from lightkeeper.stack.dashboards import queries as q
from lightkeeper.stack.dashboards.panels import Json, Query
from lightkeeper.stack.names import DashboardKey

KEY: DashboardKey = "usage"


def build(spec: Spec) -> Json:
    panels = _business_panels()
    if cat.all_emitted(cat.AUTH_ATTEMPTS):
        panels += _auth_panels()
    if spec.workflow and cat.all_emitted(cat.WORKFLOW_ENTITIES, cat.WORKFLOW_STUCK_ENTITIES):
        panels += _workflow_panels(spec)
    if cat.all_emitted(cat.WEB_VITALS_LCP, cat.WEB_VITALS_INP, cat.WEB_VITALS_CLS, cat.FRONTEND_ERRORS):
        panels += _web_panels(spec)
    return p.dashboard(
        spec,
        KEY,
        panels,
        description=f"What {spec.service}'s users do, whether work flows through, and how pages perform.",
    )


def _business_panels() -> list[Json]:
    return [
        p.row("Business events"),
        p.timeseries(
            "Usage events by name",
            [Query(q.sum_rate(cat.USAGE_EVENTS, ("environment", "event")), "{{environment}} {{event}}")],
            unit="ops",
        ),
        p.table(
            "Usage events in range",
            [
                Query(
                    q.sum_rate(cat.USAGE_EVENTS, ("environment", "event"), window="$__range", fn="increase"),
                    instant=True,
                    table=True,
                )
            ],
            description="Events counted by lightkeeper.usage() over the dashboard's time range.",
        ),
    ]


def _auth_panels() -> list[Json]:
    auth_failed = q.sum_rate(cat.AUTH_ATTEMPTS, ("environment", "method"), ("outcome", "!=", "success"))
    auth_all = q.sum_rate(cat.AUTH_ATTEMPTS, ("environment", "method"))
    return [
        p.timeseries(
            "Authentication attempts by outcome",
            [
                Query(
                    q.sum_rate(cat.AUTH_ATTEMPTS, ("environment", "method", "outcome")),
                    "{{environment}} {{method}} {{outcome}}",
                )
            ],
            unit="ops",
            stack=True,
        ),
        p.timeseries(
            "Authentication failure ratio",
            [Query(q.ratio(f"{auth_failed} or {auth_all} * 0", auth_all), "{{environment}} {{method}}")],
            unit="percentunit",
            description="Failed or locked attempts over all attempts; a jump suggests credential stuffing.",
        ),
    ]


def _workflow_panels(spec: Spec) -> list[Json]:
    return [
        p.row("Workflow"),
        p.timeseries(
            "Entities by status",
            [
                Query(
                    q.aggregate("sum", cat.WORKFLOW_ENTITIES, ("environment", "entity", "status")),
                    "{{environment}} {{entity}} {{status}}",
                )
            ],
        ),
        p.timeseries(
            "Stuck entities",
            [
                Query(
                    q.aggregate(
                        "max", cat.WORKFLOW_STUCK_ENTITIES, ("environment", "entity", "status", "threshold")
                    ),
                    "{{environment}} {{entity}} {{status}} > {{threshold}}",
                )
            ],
            description="Entities in a processing status past the threshold. "
            + p.threshold_note(spec, "workflow_stuck"),
            thresholds=p.alert_thresholds(spec, "workflow_stuck"),
        ),
        p.timeseries(
            "Oldest processing age",
            [
                Query(
                    q.aggregate("max", cat.WORKFLOW_OLDEST_PROCESSING_AGE, ("environment", "entity")),
                    "{{environment}} {{entity}}",
                )
            ],
            unit="s",
            description="Age of the oldest entity still in a processing status (0 when none is).",
        ),
    ]


# Web vitals panels: (title, signal, alert family, Grafana unit).
_VITALS: tuple[tuple[str, cat.Signal, str, str], ...] = (
    ("LCP p75 by page", cat.WEB_VITALS_LCP, "web_vitals_lcp_p75_seconds", "s"),
    ("INP p75 by page", cat.WEB_VITALS_INP, "web_vitals_inp_p75_seconds", "s"),
    ("CLS p75 by page", cat.WEB_VITALS_CLS, "web_vitals_cls_p75", "none"),
)


def _web_panels(spec: Spec) -> list[Json]:
    """Core Web Vitals at the 75th percentile of page views, as web.dev judges them."""
    found = [p.row("Web performance")]
    for title, signal, family, unit in _VITALS:
        found.append(
            p.timeseries(
                title,
                [Query(q.quantile("0.75", signal, ("environment", "page")), "{{environment}} {{page}}")],
                unit=unit,
                description=p.threshold_note(spec, family),
                thresholds=p.alert_thresholds(spec, family),
                w=8,
            )
        )
    found.append(
        p.timeseries(
            "JavaScript errors by page",
            [
                Query(
                    q.sum_rate(cat.FRONTEND_ERRORS, ("environment", "page", "error_type")),
                    "{{environment}} {{page}} {{error_type}}",
                )
            ],
            unit="ops",
            description="Uncaught errors and unhandled rejections; messages and stacks are in the logs. "
            + p.threshold_note(spec, "frontend_errors_per_second"),
            thresholds=p.alert_thresholds(spec, "frontend_errors_per_second"),
        )
    )
    return found
