"""Probe SLIs: the SLO's error ratio is the share of measured time its probe was down.

Time-weighted exactly as `/sla/uptime` (the same `queries.uptime`): up seconds are
good, down seconds bad; maintenance and no-data time (the server was not watching)
count as neither, so a stopped server neither spends nor earns budget. Each window
ends now, because a probe's state holds between results rather than being sampled.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine

from lightkeeper import slo_math
from lightkeeper.server.slo.reading import Reading
from lightkeeper.server.store import queries
from lightkeeper.spec.models import SLO, ProbeSLI

SOURCE = "probe"


def _seconds(engine: Engine, probe: str, now: datetime, window_s: float) -> tuple[float, float]:
    """(up, up + down) seconds of `probe` over the window ending now; (0, 0) for an unknown probe."""
    found = queries.uptime(engine, probe, now - timedelta(seconds=window_s), now, now=now)
    up = sum(m.times.up for m in found)
    return up, up + sum(m.times.down for m in found)


def _ratio(up: float, counted: float) -> float | None:
    return slo_math.error_ratio(counted - up, counted)


def reading(engine: Engine, slo: SLO, now: datetime) -> Reading:
    if not isinstance(slo.sli, ProbeSLI):
        raise TypeError(f"SLO {slo.name!r} is not a probe SLI")
    probe = slo.sli.probe
    windows = {
        w: _ratio(*_seconds(engine, probe, now, slo_math.duration_seconds(w))) for w in slo_math.BURN_WINDOWS
    }
    up, counted = _seconds(engine, probe, now, slo_math.period_seconds(slo.period))
    measured = counted > 0
    return Reading(
        now.timestamp() if measured else None,
        _ratio(up, counted),
        windows,
        good=up,
        total=counted,
        source=SOURCE,
    )
