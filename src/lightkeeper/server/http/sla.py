"""SLA documents: the current month against the spec's commitments, and the monthly report.

A component's numbers pool its probes' seconds and checks (availability = all their up
time over all their up + down time), so a component watched by three probes is judged
on everything they saw. The credit is the highest tier whose threshold the month's
availability falls below, capped by `credit_cap_percent`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from lightkeeper.server.http import reads, uptime, windows
from lightkeeper.server.http.quantiles import merged_quantiles
from lightkeeper.server.store import queries
from lightkeeper.server.store.queries import ProbeUptime
from lightkeeper.server.store.uptime import TimeInStates, incident_stats
from lightkeeper.spec.models import Spec
from lightkeeper.spec.server import ServerSection


def _pool(items: Sequence[uptime.Totals]) -> uptime.Totals:
    pooled = uptime.Totals()
    for item in items:
        pooled.up += item.up
        pooled.down += item.down
        pooled.no_data += item.no_data
        pooled.maintenance += item.maintenance
        pooled.checks += item.checks
        pooled.failures += item.failures
        pooled.sketches.extend(item.sketches)
    return pooled


def _commitments(
    section: ServerSection, times: TimeInStates, pooled: uptime.Totals, month_seconds: float, judging: int
) -> list[dict[str, Any]]:
    sla = section.sla
    out: list[dict[str, Any]] = []
    if sla.availability_percent is not None:
        value = times.availability_percent
        # The month's downtime budget for one probe, less the average probe's downtime so far.
        budget = (1 - sla.availability_percent / 100) * month_seconds
        spent = times.down / max(1, judging)
        out.append(
            {
                "name": "availability",
                "unit": "percent",
                "target": sla.availability_percent,
                "comparison": ">=",
                "current": _r(value),
                "met": value is None or value >= sla.availability_percent,
                "downtime_allowed_seconds": round(max(0.0, budget - spent), 3),
            }
        )
    if sla.latency_p95_ms is not None:
        (p95,) = merged_quantiles(pooled.sketches, (0.95,))
        out.append(
            {
                "name": "latency_p95",
                "unit": "ms",
                "target": sla.latency_p95_ms,
                "comparison": "<",
                "current": _r(p95),
                "met": p95 is None or p95 < sla.latency_p95_ms,
            }
        )
    if sla.error_rate_percent is not None:
        rate = pooled.error_rate_percent
        out.append(
            {
                "name": "error_rate",
                "unit": "percent",
                "target": sla.error_rate_percent,
                "comparison": "<",
                "current": _r(rate),
                "met": rate is None or rate < sla.error_rate_percent,
            }
        )
    return out


def _measure(
    engine: Engine, start: datetime, end: datetime, now: datetime
) -> tuple[dict[str, ProbeUptime], dict[str, uptime.Totals]]:
    measured = {m.name: m for m in queries.uptime(engine, None, start, end, now=now)}
    return measured, uptime.totals(engine, list(measured), start, min(end, now))


def _sum_times(items: Iterable[ProbeUptime]) -> TimeInStates:
    return sum((m.times for m in items), TimeInStates())


def _judging(items: Iterable[ProbeUptime]) -> int:
    """Probes that were up or down at some point (the others have nothing to judge)."""
    return sum(1 for item in items if item.times.up + item.times.down > 0)


def status(
    engine: Engine,
    section: ServerSection,
    now: datetime,
    spec: Spec | None = None,
    environment: str | None = None,
) -> dict[str, Any]:
    """`/sla/status`: this calendar month so far, and each SLO of the spec (issue 12)."""
    month = windows.current_month(section.timezone, now)
    start, end = windows.month_bounds(month, section.timezone)
    measured, totals = _measure(engine, start, now, now)
    pooled = _pool(list(totals.values()))
    times = _sum_times(measured.values())
    month_seconds = (end - start).total_seconds()
    return {
        "month": month,
        "timezone": section.timezone,
        "from": _iso(start),
        "to": _iso(now),
        "commitments": _commitments(section, times, pooled, month_seconds, _judging(measured.values())),
        "slos": slo_states(engine, spec, now, environment),
    }


def slo_states(
    engine: Engine, spec: Spec | None, now: datetime, environment: str | None = None
) -> list[dict[str, Any]]:
    """The `slos` list: one state per SLO of the spec (embedded samples, Prometheus or probes)."""
    from lightkeeper.server.slo import alerting, evaluate

    if spec is None or not spec.slos:
        return []
    return evaluate.states(engine, spec, now, alerting.firing(engine), environment)


def report(engine: Engine, section: ServerSection, month: str, now: datetime) -> dict[str, Any]:
    """The monthly report per component with the credit owed (`/api/report/sla`)."""
    window = windows.calendar_month(month, section.timezone, now)
    full_start, full_end = windows.month_bounds(month, section.timezone)
    measured, totals = _measure(engine, window.start, window.end, now)
    components_of = {v.name: v.probe.component or v.name for v in reads.probes(engine)}
    by_component: dict[str, list[str]] = {}
    for name in measured:
        by_component.setdefault(components_of.get(name, name), []).append(name)
    found = reads.incidents(engine, since=window.start, until=window.end, limit=100_000)
    components = []
    for component, names in sorted(by_component.items()):
        members = [measured[n] for n in names]
        times = _sum_times(members)
        pooled = _pool([totals[n] for n in names])
        stats = incident_stats(
            ((i.started_at, i.resolved_at) for i in found if i.probe in names), window.start, window.end
        )
        commitments = _commitments(
            section, times, pooled, (full_end - full_start).total_seconds(), _judging(members)
        )
        components.append(
            {
                "component": component,
                "probes": names,
                "availability_percent": _r(times.availability_percent),
                "downtime_seconds": round(times.down, 3),
                "no_data_seconds": round(times.no_data, 3),
                "maintenance_seconds": round(times.maintenance, 3),
                "incidents": stats.count,
                "longest_incident_seconds": round(stats.longest_seconds, 3),
                "commitments": commitments,
                "met": all(c["met"] for c in commitments),
                "credit_percent": section.credit_percent(times.availability_percent),
            }
        )
    return {
        "month": month,
        "timezone": section.timezone,
        "from": _iso(window.start),
        "to": _iso(window.end),
        "complete": window.end >= full_end,
        "credit_tiers": [t.model_dump() for t in section.credits],
        "credit_cap_percent": section.credit_cap_percent,
        "components": components,
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
