"""The good and total event counts one SLO needs, summed out of a `/metrics` page.

Only the counters of the SLO's routes are summed (every route when the SLO names none),
across methods and status codes, so one stored pair per SLO and target is enough. The
sums are still counters: a restart of the target resets them, which the math detects.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from lightkeeper import catalogue as cat
from lightkeeper.spec.models import SLO, LatencySLI, Spec


@dataclass(frozen=True, slots=True)
class Counts:
    good: float
    total: float


@dataclass(frozen=True, slots=True)
class Selection:
    """What one SLO counts: which routes, and what makes an event good."""

    slo: str
    kind: str
    routes: frozenset[str] | None
    bad_status: re.Pattern[str] | None = None
    le: float | None = None

    def wants(self, labels: Mapping[str, str]) -> bool:
        return self.routes is None or labels.get("route") in self.routes


def selection(spec: Spec, slo: SLO) -> Selection:
    sli = slo.sli
    if sli.route_group is not None:
        routes: frozenset[str] | None = frozenset(spec.route_groups[sli.route_group])
    else:
        routes = frozenset(sli.routes) if sli.routes else None
    if sli.kind == "availability":
        # Prometheus anchors label regexes; fullmatch does the same here.
        return Selection(slo.name, "availability", routes, bad_status=re.compile(sli.bad_status))
    if not isinstance(sli, LatencySLI):
        raise ValueError(f"SLO {slo.name!r}: a {sli.kind} SLI has no /metrics series")
    return Selection(slo.name, "latency", routes, le=float(sli.threshold_seconds))


def count(text: str, selections: Iterable[Selection]) -> dict[str, Counts]:
    """Per SLO name, the summed counts in one scrape; an SLO with no matching series is absent."""
    chosen = list(selections)
    good: dict[str, float] = {}
    total: dict[str, float] = {}
    requests = cat.HTTP_REQUESTS.name
    duration = cat.HTTP_REQUEST_DURATION.name
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels = sample.name, sample.labels
            if name not in (requests, f"{requests}_total", f"{duration}_bucket", f"{duration}_count"):
                continue
            for s in chosen:
                if not s.wants(labels):
                    continue
                if s.kind == "availability" and name in (requests, f"{requests}_total"):
                    total[s.slo] = total.get(s.slo, 0.0) + sample.value
                    assert s.bad_status is not None
                    if not s.bad_status.fullmatch(labels.get("status_code", "")):
                        good[s.slo] = good.get(s.slo, 0.0) + sample.value
                elif s.kind == "latency" and name == f"{duration}_count":
                    total[s.slo] = total.get(s.slo, 0.0) + sample.value
                elif s.kind == "latency" and name == f"{duration}_bucket" and _le(labels) == s.le:
                    good[s.slo] = good.get(s.slo, 0.0) + sample.value
    return {slo: Counts(good.get(slo, 0.0), value) for slo, value in total.items()}


def _le(labels: Mapping[str, str]) -> float | None:
    try:
        return float(labels.get("le", ""))
    except ValueError:
        return None
