"""The good and total event counts one SLO needs, summed out of a `/metrics` page.

What an SLO counts comes from the kind table (`lightkeeper.spec.sli_events`), the same
one the rule generator renders as PromQL, so the embedded scraper and Prometheus count
the same samples. Only the SLO's matching samples are summed (its routes, its bad
statuses, ...), across every other label, so one stored pair per SLO and target is
enough. The sums are still counters: a restart of the target resets them, which the
math detects. Kinds whose events are not on the service's `/metrics` (probes, which
count time, and deployments, which the server stores itself) have no selection.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from lightkeeper.spec import sli_events
from lightkeeper.spec.models import SLO, Spec
from lightkeeper.spec.sli_events import Events, Match, Part


@dataclass(frozen=True, slots=True)
class Counts:
    good: float
    total: float


@dataclass(frozen=True, slots=True)
class Selection:
    """What one SLO counts: its kind's events over its routes."""

    slo: str
    events: Events


def selection(spec: Spec, slo: SLO) -> Selection:
    """The SLO's events, for kinds the service's own `/metrics` page carries."""
    sli = slo.sli
    if not sli_events.is_metric(sli):
        raise ValueError(f"SLO {slo.name!r}: a {sli.kind} SLI has no /metrics series")
    if sli.route_group is not None:
        routes: list[str] | None = list(spec.route_groups[sli.route_group])
    else:
        routes = list(sli.routes) if sli.routes else None
    events = sli_events.events(sli, routes)
    if events.scope != "service":
        raise ValueError(f"SLO {slo.name!r}: {sli.kind} events are not on the service's /metrics")
    return Selection(slo.name, events)


def scraped(slo: SLO) -> bool:
    """True when the embedded scraper counts this SLO from the service's `/metrics`."""
    return sli_events.is_metric(slo.sli) and sli_events.events(slo.sli).scope == "service"


def _matches(m: Match, labels: Mapping[str, str]) -> bool:
    value = labels.get(m.label, "")
    if m.op == "=":
        return value == m.value
    if m.op == "!=":
        return value != m.value
    if m.op == "in":
        return value in m.values
    if m.op == "bound":
        return _number(value) == float(m.value)
    # Prometheus anchors label regexes; fullmatch does the same here.
    found = re.fullmatch(m.value, value) is not None
    return found if m.op == "=~" else not found


def _in(part: Part | None, name: str, labels: Mapping[str, str]) -> bool:
    return part is not None and name in part.metrics and all(_matches(m, labels) for m in part.matchers)


def count(text: str, selections: Iterable[Selection]) -> dict[str, Counts]:
    """Per SLO name, the summed counts in one scrape; an SLO with no matching series is absent."""
    chosen = list(selections)
    parts = [p for s in chosen for p in (s.events.total, s.events.good, s.events.bad) if p is not None]
    wanted = {name for p in parts for name in p.metrics}
    total: dict[str, float] = {}
    part: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name not in wanted:
                continue
            for s in chosen:
                events = s.events
                if _in(events.total, sample.name, sample.labels):
                    total[s.slo] = total.get(s.slo, 0.0) + sample.value
                if _in(events.good or events.bad, sample.name, sample.labels):
                    part[s.slo] = part.get(s.slo, 0.0) + sample.value
    out: dict[str, Counts] = {}
    for s in chosen:
        if s.slo not in total:
            continue
        counted = part.get(s.slo, 0.0)
        good = counted if s.events.good is not None else total[s.slo] - counted
        out[s.slo] = Counts(good, total[s.slo])
    return out


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
