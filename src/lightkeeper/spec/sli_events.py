"""What each metric SLI kind counts, as one table every consumer reads.

The rule generator renders these parts as PromQL (`lightkeeper.stack.sli_queries`),
the server's embedded scraper sums the matching samples of a `/metrics` page
(`lightkeeper.server.slo.series`), and the generated promtool tests build their input
series from each kind's example events. A new kind is a model class and one entry in
`KINDS`; nothing downstream branches on the kind's name. Probe SLIs are absent: they
count time, not events, and only the server measures them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from lightkeeper import catalogue as cat
from lightkeeper.spec.models import SLI, AvailabilitySLI, DatabaseSLI, DeploymentSLI, LatencySLI

Op = Literal["=", "!=", "=~", "!~", "in", "bound"]
"""PromQL's four operators, `in` (the label is one of `values`) and `bound` (the `le`
of the histogram bucket whose bound equals the number, whatever its spelling)."""

Scope = Literal["service", "server"]
"""Who exposes the series: the service's own targets, which Prometheus labels
`service` and `environment`, or the lightkeeper server, whose series name the
environment in a label of their own and carry no service."""

# The label naming the environment on each scope's series.
ENVIRONMENT_LABEL: dict[Scope, str] = {"service": "environment", "server": "env"}

Example = tuple[str, tuple[tuple[str, str], ...]]
"""A series one event increments: sample name and its own labels (no target labels)."""


@dataclass(frozen=True)
class Match:
    label: str
    op: Op
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.values or (self.op != "in" and len(self.values) != 1):
            raise ValueError(f"matcher on {self.label!r}: `in` takes values, every other op exactly one")

    @property
    def value(self) -> str:
        return self.values[0]


@dataclass(frozen=True)
class Part:
    """Events summed over the samples of one or more names that all pass `matchers`."""

    metrics: tuple[str, ...]
    matchers: tuple[Match, ...] = ()


@dataclass(frozen=True)
class Events:
    """One SLO's total events and either its bad or its good ones (the cheaper to select).

    `good_example` and `bad_example` are the series one good or bad event increments,
    so a test can build counters whose exact ratio it knows.
    """

    scope: Scope
    total: Part
    bad: Part | None = None
    good: Part | None = None
    good_example: tuple[Example, ...] = field(default=())
    bad_example: tuple[Example, ...] = field(default=())
    good_means: str = ""  # the good events in words, for dashboards

    def __post_init__(self) -> None:
        if (self.bad is None) == (self.good is None):
            raise ValueError("an SLI kind counts either its bad or its good events besides the total")

    @property
    def environment_label(self) -> str:
        return ENVIRONMENT_LABEL[self.scope]


Routes = Sequence[str] | None


def _routes(routes: Routes) -> tuple[Match, ...]:
    return (Match("route", "in", tuple(sorted(set(routes)))),) if routes else ()


def _example_route(routes: Routes) -> tuple[tuple[str, str], ...]:
    return (("method", "GET"), ("route", sorted(routes)[0] if routes else "/api/things/{thing_id}"))


# Status codes tried, in order, for the example of a bad response: the first the SLO counts as bad.
_BAD_CODES = ("503", "500", "429", "404", "400", "408")


def _availability(sli: Any, routes: Routes) -> Events:
    assert isinstance(sli, AvailabilitySLI)
    name = cat.HTTP_REQUESTS.name
    scope = _routes(routes)
    bad_code = next((c for c in _BAD_CODES if re.fullmatch(sli.bad_status, c)), _BAD_CODES[0])
    base = _example_route(routes)
    means = (
        "requests not answered 5xx"
        if sli.bad_status == "5.."
        else f"requests whose status does not match {sli.bad_status}"
    )
    return Events(
        "service",
        total=Part((name,), scope),
        bad=Part((name,), (*scope, Match("status_code", "=~", (sli.bad_status,)))),
        good_example=((name, (*base, ("status_code", "200"))),),
        bad_example=((name, (*base, ("status_code", bad_code))),),
        good_means=means,
    )


def _latency(sli: Any, routes: Routes) -> Events:
    assert isinstance(sli, LatencySLI)
    name = cat.HTTP_REQUEST_DURATION.name
    scope = _routes(routes)
    base = _example_route(routes)
    bound = repr(float(sli.threshold_seconds))
    within = (f"{name}_bucket", (*base, ("le", bound)))
    slower = ((f"{name}_bucket", (*base, ("le", "+Inf"))), (f"{name}_count", base))
    return Events(
        "service",
        total=Part((f"{name}_count",), scope),
        good=Part((f"{name}_bucket",), (*scope, Match("le", "bound", (bound,)))),
        good_example=(within, *slower),
        bad_example=slower,
        good_means="requests faster than the threshold",
    )


def _database(sli: Any, routes: Routes) -> Events:
    assert isinstance(sli, DatabaseSLI)
    completed = f"{cat.DB_QUERY_DURATION.name}_count"
    failed = cat.DB_ERRORS.name
    return Events(
        "service",
        total=Part((completed, failed)),
        bad=Part((failed,)),
        good_example=((completed, (("operation", "SELECT"), ("table", "orders"))),),
        bad_example=((failed, (("error_type", "OperationalError"),)),),
        good_means="SQL statements that completed without a database error",
    )


def _deployment(sli: Any, routes: Routes) -> Events:
    assert isinstance(sli, DeploymentSLI)
    name = cat.DEPLOYMENTS.name
    scope = (Match("component", "in", tuple(sorted(set(sli.components)))),) if sli.components else ()
    component = ("component", sorted(sli.components)[0] if sli.components else "api")
    return Events(
        "server",
        total=Part((name,), scope),
        bad=Part((name,), (*scope, Match("status", "!=", (SUCCESS,)))),
        good_example=((name, (component, ("status", SUCCESS))),),
        bad_example=((name, (component, ("status", "failure"))),),
        good_means="finished deployments that succeeded",
    )


SUCCESS = "success"

KINDS: dict[str, Callable[[Any, Routes], Events]] = {
    "availability": _availability,
    "latency": _latency,
    "database": _database,
    "deployment": _deployment,
}


def events(sli: SLI, routes: Routes = None) -> Events:
    """The events `sli` counts over `routes` (the SLO's resolved route list, None = all)."""
    build = KINDS.get(sli.kind)
    if build is None:
        raise ValueError(f"a {sli.kind} SLI is not counted from metric series")
    return build(sli, routes)


def is_metric(sli: SLI) -> bool:
    """True for kinds whose events are metric series (every kind but probe)."""
    return sli.kind in KINDS
