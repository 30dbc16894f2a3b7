"""API Performance: the RED signals per route, and the outbound calls behind them."""

from __future__ import annotations

from lightkeeper import catalogue as cat
from lightkeeper.spec.models import Spec
from lightkeeper.stack.dashboards import panels as p
from lightkeeper.stack.dashboards import queries as q
from lightkeeper.stack.dashboards.panels import Json, Query
from lightkeeper.stack.names import DashboardKey

KEY: DashboardKey = "api-performance"
BAD_STATUS = ("status_code", "=~", "5..")


def build(spec: Spec) -> Json:
    env = "{{environment}}"
    by_route = ("environment", "route")
    route = "{{environment}} {{route}}"
    latency_note = p.threshold_note(spec, "latency_p95_seconds")
    panels: list[Json] = [
        p.row("Traffic and errors"),
        p.timeseries(
            "Request rate by route",
            [Query(q.sum_rate(cat.HTTP_REQUESTS, by_route), route)],
            unit="reqps",
        ),
        p.timeseries(
            "Request rate by status code",
            [
                Query(
                    q.sum_rate(cat.HTTP_REQUESTS, ("environment", "status_code")),
                    "{{environment}} {{status_code}}",
                )
            ],
            unit="reqps",
            stack=True,
        ),
        p.timeseries(
            "Error ratio (5xx)",
            [Query(q.share_of(cat.HTTP_REQUESTS, [BAD_STATUS]), env)],
            unit="percentunit",
            description=p.threshold_note(spec, "error_rate"),
            thresholds=p.alert_thresholds(spec, "error_rate"),
        ),
        p.timeseries(
            "Error ratio (5xx) by route",
            [Query(q.share_of(cat.HTTP_REQUESTS, [BAD_STATUS], by_route), route)],
            unit="percentunit",
            thresholds=p.alert_thresholds(spec, "error_rate"),
        ),
        p.timeseries(
            "Unhandled exceptions by type",
            [
                Query(
                    q.sum_rate(cat.HTTP_EXCEPTIONS, ("environment", "exception_type")),
                    "{{environment}} {{exception_type}}",
                )
            ],
            unit="ops",
            description=p.threshold_note(spec, "exceptions_per_second"),
        ),
        p.table(
            "Busiest routes",
            [
                Query(
                    f"topk(10, {q.sum_rate(cat.HTTP_REQUESTS, by_route, window='$__range')})",
                    instant=True,
                    table=True,
                )
            ],
            unit="reqps",
            description="Mean request rate over the dashboard's time range.",
        ),
        p.row("Latency"),
        p.timeseries(
            "Latency p50 / p95 / p99",
            [
                Query(
                    q.quantile(quantile, cat.HTTP_REQUEST_DURATION),
                    f"{{{{environment}}}} {name}",
                    exemplar=True,
                )
                for name, quantile in (("p50", "0.5"), ("p95", "0.95"), ("p99", "0.99"))
            ],
            unit="s",
            description="Exemplars link a point to its trace in Tempo. " + latency_note,
            thresholds=p.alert_thresholds(spec, "latency_p95_seconds"),
        ),
        p.timeseries(
            "Latency p95 by route",
            [Query(q.quantile("0.95", cat.HTTP_REQUEST_DURATION, by_route), route, exemplar=True)],
            unit="s",
            description=latency_note,
            thresholds=p.alert_thresholds(spec, "latency_p95_seconds"),
        ),
        p.timeseries(
            "Latency p99 by route",
            [Query(q.quantile("0.99", cat.HTTP_REQUEST_DURATION, by_route), route)],
            unit="s",
            description=p.threshold_note(spec, "latency_p99_seconds"),
            thresholds=p.alert_thresholds(spec, "latency_p99_seconds"),
        ),
        p.timeseries(
            "Time to first byte p95 (streaming)",
            [Query(q.quantile("0.95", cat.HTTP_TIME_TO_FIRST_BYTE, by_route), route)],
            unit="s",
        ),
        p.timeseries(
            "Requests in progress by route",
            [Query(q.aggregate("sum", cat.HTTP_REQUESTS_IN_PROGRESS, by_route), route)],
        ),
        p.timeseries(
            "Response size p95 by route",
            [Query(q.quantile("0.95", cat.HTTP_RESPONSE_SIZE, by_route), route)],
            unit="bytes",
        ),
        p.timeseries(
            "Request size p95 by route",
            [Query(q.quantile("0.95", cat.HTTP_REQUEST_SIZE, by_route), route)],
            unit="bytes",
        ),
        p.row("Outbound calls"),
        p.timeseries(
            "Outbound requests by host",
            [
                Query(
                    q.sum_rate(cat.HTTP_CLIENT_REQUESTS, ("environment", "host")), "{{environment}} {{host}}"
                )
            ],
            unit="reqps",
            w=8,
        ),
        p.timeseries(
            "Outbound failures by host",
            [
                Query(
                    q.sum_rate(cat.HTTP_CLIENT_FAILURES, ("environment", "host", "error_type")),
                    "{{environment}} {{host}} {{error_type}}",
                )
            ],
            unit="ops",
            w=8,
        ),
        p.timeseries(
            "Outbound latency p95 by host",
            [
                Query(
                    q.quantile("0.95", cat.HTTP_CLIENT_DURATION, ("environment", "host")),
                    "{{environment}} {{host}}",
                )
            ],
            unit="s",
            w=8,
        ),
    ]
    return p.dashboard(
        spec,
        KEY,
        panels,
        description=f"Rate, errors and duration of {spec.service}'s HTTP routes, and the calls they make.",
    )
