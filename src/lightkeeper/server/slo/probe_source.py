"""Probe SLIs: the SLO's error ratio is the share of measured time its probe was down.

Time-weighted exactly as `/sla/uptime` (the same `queries.uptime`): up seconds are
good, down seconds bad; maintenance and no-data time (the server was not watching)
count as neither, so a stopped server neither spends nor earns budget. Each window
ends now, because a probe's state holds between results rather than being sampled.
History, the monthly report and the burn-rate alerts read the same seconds, so a
probe SLO's `/sla/status`, its burn-down chart and its alerts cannot disagree.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from lightkeeper import slo_math
from lightkeeper.server.slo.reading import Reading
from lightkeeper.server.store import queries
from lightkeeper.spec.models import SLO, ProbeSLI

SOURCE = "probe"
BURN = slo_math.BURN_WINDOWS


def probe_of(slo: SLO) -> str:
    if not isinstance(slo.sli, ProbeSLI):
        raise TypeError(f"SLO {slo.name!r} is not a probe SLI")
    return slo.sli.probe


def seconds(engine: Engine, probe: str, end: datetime, window_s: float, now: datetime) -> tuple[float, float]:
    """(up, up + down) seconds of `probe` over the window ending at `end` (cut at now); (0, 0) unknown."""
    found = queries.uptime(engine, probe, end - timedelta(seconds=window_s), end, now=now)
    up = sum(m.times.up for m in found)
    return up, up + sum(m.times.down for m in found)


def ratio(up: float, counted: float) -> float | None:
    return slo_math.error_ratio(counted - up, counted)


def window_ratio(engine: Engine, slo: SLO, now: datetime, window_s: float) -> float | None:
    """Down ÷ measured seconds over the window ending now; None when nothing was measured."""
    return ratio(*seconds(engine, probe_of(slo), now, window_s, now))


def reading(engine: Engine, slo: SLO, now: datetime) -> Reading:
    probe = probe_of(slo)
    windows = {w: ratio(*seconds(engine, probe, now, slo_math.duration_seconds(w), now)) for w in BURN}
    up, counted = seconds(engine, probe, now, slo_math.period_seconds(slo.period), now)
    measured = counted > 0
    return Reading(
        now.timestamp() if measured else None,
        ratio(up, counted),
        windows,
        good=up,
        total=counted,
        source=SOURCE,
    )


def period_budget(engine: Engine, slo: SLO, end: datetime, now: datetime) -> slo_math.Budget:
    """The budget over the SLO's period ending at `end`: up seconds good, measured seconds total."""
    period = slo_math.period_seconds(slo.period)
    up, counted = seconds(engine, probe_of(slo), end, period, now)
    return slo_math.budget(slo.objective, period, up, counted)


def daily(engine: Engine, slo: SLO, first: datetime, days: int, now: datetime) -> list[tuple[float, float]]:
    """(up, up + down) seconds per UTC day from `first`; days after now are (0, 0).

    From the day roll-ups (`queries.daily_bars`, the status page's bars), so a month's
    report is one read, not one per day.
    """
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    span = (today - first).days + 1
    out = [(0.0, 0.0)] * days
    if span <= 0:
        return out
    bars = queries.daily_bars(engine, span, now=now, probe=probe_of(slo)).get(probe_of(slo), [])
    for i, bar in enumerate(bars[:days]):
        out[i] = (bar.times.up, bar.times.up + bar.times.down)
    return out
