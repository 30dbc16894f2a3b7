"""The weekly error-budget report of one SLO for one calendar month (`/api/slo/{name}/report`).

The seeds keep this table by hand; here it comes from the stored counter samples.
Months and weeks are UTC; weeks are ISO weeks (Monday first) clipped to the month.

The month's budget is (1 - objective) x the month's real length (99.5 % of November
is 216 min). The budget is a share of the month's events, so a week's spend is its
bad events ÷ the month's total events x the month's length in minutes: the weeks
then add up exactly to the month's consumed minutes (`slo_math.budget` over the
month), and a week whose traffic was 1 % bad spends more when it carried more of the
month's requests. Counts are the counters' increases between consecutive samples
(resets handled as in `slo_math.increase`, never extrapolated across a week's edge),
so each interval between two scrapes is counted in exactly one week. A probe SLI
counts seconds instead of events (up is good, up + down is the total, as in its
`/sla/status` entry), from the probe's day roll-ups, and only its probe's incidents.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import Engine, select

from lightkeeper import slo_math
from lightkeeper.server.slo import deploy_source, probe_source, samples
from lightkeeper.server.store.tables import incidents as incidents_table
from lightkeeper.spec.models import SLO, DeploymentSLI, ProbeSLI

_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


class BadMonth(ValueError):
    """The month is not `YYYY-MM`."""


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month) in UTC for `YYYY-MM`."""
    found = _MONTH.fullmatch(month)
    if found is None:
        raise BadMonth(f"month {month!r} is not YYYY-MM (e.g. 2026-11)")
    year, number = int(found[1]), int(found[2])
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return start, end


def weeks(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """ISO weeks overlapping [start, end), each clipped to it."""
    out = []
    cursor = start
    while cursor < end:
        monday = cursor - timedelta(days=cursor.weekday())
        nxt = min(end, monday.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=7))
        out.append((cursor, nxt))
        cursor = nxt
    return out


@dataclass(frozen=True)
class Counts:
    good: float = 0.0
    total: float = 0.0

    @property
    def bad(self) -> float:
        return max(0.0, self.total - self.good)

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.good + other.good, self.total + other.total)


def _delta(series: Sequence[slo_math.Sample]) -> float:
    """Reset-aware increase from the first to the last sample, with no extrapolation."""
    if len(series) < 2:
        return 0.0
    return slo_math.increase(series, series[0][0], series[-1][0]) or 0.0


def bucket_counts(stored: dict[str, list[samples.Sample]], edges: Sequence[datetime]) -> list[Counts]:
    """Counts per [edges[i], edges[i+1]): each scrape interval lands in the bucket of its later sample."""
    out = [Counts() for _ in range(len(edges) - 1)]
    for series in stored.values():
        times = [s.at for s in series]
        for i, (lo, hi) in enumerate(pairwise(edges)):
            first, stop = bisect_left(times, lo), bisect_left(times, hi)
            if first == stop:
                continue
            chunk = series[max(0, first - 1) : stop]
            good = _delta([(s.at.timestamp(), s.good) for s in chunk])
            total = _delta([(s.at.timestamp(), s.total) for s in chunk])
            out[i] = out[i] + Counts(good, total)
    return out


def _daily_counts(
    engine: Engine, slo: SLO, days: Sequence[datetime], now: datetime, environment: str
) -> list[Counts]:
    """Counts per day of `days` (edges): events from the stored samples, a probe's seconds, or the
    deployments finished that day."""
    if isinstance(slo.sli, DeploymentSLI):
        done = deploy_source.finished(engine, slo, environment, now, (now - days[0]).total_seconds())
        return [
            Counts(*deploy_source.window_counts(done, hi, (hi - lo).total_seconds()))
            for lo, hi in pairwise(days)
        ]
    if isinstance(slo.sli, ProbeSLI):
        seconds = probe_source.daily(engine, slo, days[0], len(days) - 1, now)
        return [Counts(up, counted) for up, counted in seconds]
    # One scrape before the month so its first interval is counted, as in every other bucket.
    stored = samples.read(engine, slo.name, days[0] - timedelta(hours=1), min(days[-1], now))
    return bucket_counts(stored, days)


def report(engine: Engine, slo: SLO, month: str, now: datetime, environment: str = "") -> dict[str, Any]:
    """The month's weekly table, the incidents of each week and the verdict (`environment`: the
    deployments a deployment SLO counts)."""
    start, end = month_bounds(month)
    if start > now:
        raise BadMonth(f"month {month} has not started yet")
    length = (end - start).total_seconds()
    days = [start + timedelta(days=d) for d in range(round(length / slo_math.DAY_SECONDS) + 1)]
    daily = _daily_counts(engine, slo, days, now, environment)
    month_counts = sum(daily, Counts())
    whole = slo_math.budget(slo.objective, length, month_counts.good, month_counts.total)
    budget_min = whole.total_minutes
    month_min = length / 60

    def spent(c: Counts) -> float:
        return 0.0 if month_counts.total <= 0 else c.bad / month_counts.total * month_min

    exhausted_on: date | None = None
    running = 0.0
    for day, counts in zip(days, daily, strict=False):
        running += spent(counts)
        if exhausted_on is None and running > budget_min + 1e-9:
            exhausted_on = day.date()

    col = incidents_table.c
    query = select(col.id, col.probe, col.started_at, col.resolved_at, col.cause).where(
        col.started_at < end, col.resolved_at.is_(None) | (col.resolved_at >= start)
    )
    if isinstance(slo.sli, ProbeSLI):
        query = query.where(col.probe == slo.sli.probe)  # only its own probe's incidents spent it
    with engine.connect() as conn:
        found = conn.execute(query.order_by(col.started_at, col.id)).all()
    if isinstance(slo.sli, DeploymentSLI):
        found = []  # probe incidents never spend a deployment budget; its failed deploys do
    rows, used_total = [], 0.0
    for lo, hi in weeks(start, end):
        counts = sum((c for d, c in zip(days, daily, strict=False) if lo <= d < hi), Counts())
        used = spent(counts)
        used_total += used
        overlapping = [
            {
                "id": i.id,
                "probe": i.probe,
                "started_at": _iso(i.started_at),
                "resolved_at": None if i.resolved_at is None else _iso(i.resolved_at),
                "cause": i.cause,
            }
            for i in found
            if i.started_at < hi and (i.resolved_at is None or i.resolved_at >= lo)
        ]
        rows.append(
            {
                "week": f"{lo.isocalendar().year}-W{lo.isocalendar().week:02d}",
                "start": lo.date().isoformat(),
                "end": (hi - timedelta(days=1)).date().isoformat(),
                "good_events": counts.good,
                "total_events": counts.total,
                "budget_used_minutes": round(used, 6),
                "budget_remaining_minutes": round(budget_min - used_total, 6),
                "incidents": overlapping,
            }
        )
    if whole.no_data:
        verdict = "no data"
    elif exhausted_on is not None:
        verdict = f"budget exhausted on {exhausted_on.isoformat()}"
    else:
        verdict = "met"
    return {
        "name": slo.name,
        "month": month,
        "objective_percent": slo.objective,
        "error_budget_minutes": round(budget_min, 6),
        "budget_used_minutes": round(used_total, 6),
        "budget_remaining_minutes": round(budget_min - used_total, 6),
        "sli_percent": None if whole.sli is None else round(whole.sli * 100, 9),
        "no_data": whole.no_data,
        "exhausted_on": None if exhausted_on is None else exhausted_on.isoformat(),
        "verdict": verdict,
        "weeks": rows,
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
