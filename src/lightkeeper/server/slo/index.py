"""Counter increases over stored samples in O(hours), for evaluating 100 SLOs in well under a second.

`slo_math.increase` scans every sample in the range: 172,800 per SLO for 30 days at
15 s, sixteen times per evaluation. Here each stored hour is decoded once (cached by
SLO, target, hour and sample count, so an hour that gained a scrape is decoded again)
with its running sum of reset add-backs; a range then needs two bisections and one
pass over the hours, and the result goes through the same `slo_math.extrapolate`, so
the numbers are `increase()`'s (up to float summation order).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import datetime
from itertools import accumulate, pairwise

from sqlalchemy import Engine, select

from lightkeeper import slo_math
from lightkeeper.server.slo import samples


class Hour:
    """One stored hour of one counter pair: times, values and in-hour reset add-backs."""

    __slots__ = ("resets", "times", "values")

    def __init__(self, times: list[float], values: tuple[list[float], list[float]]) -> None:
        self.times = times
        self.values = values  # (good, total)
        self.resets = tuple(_resets(v) for v in values)


def _resets(values: list[float]) -> list[float]:
    """resets[k]: add-backs for drops at samples 1..k of the hour."""
    steps = [0.0] + [a if b < a else 0.0 for a, b in pairwise(values)]
    return list(accumulate(steps))


_CACHE: dict[tuple[str, str, datetime, int], Hour] = {}
_CACHE_MAX = 200_000


def _decode(count: int, good: bytes, total: bytes) -> Hour:
    decoded = samples.decode(count, good, total)
    return Hour([s.at.timestamp() for s in decoded], ([s.good for s in decoded], [s.total for s in decoded]))


class Series:
    """One target's stored hours, with cumulative offsets and add-backs across hour edges."""

    def __init__(self, hours: list[Hour]) -> None:
        self.hours = [h for h in hours if h.times]
        self.firsts = [h.times[0] for h in self.hours]
        self.lasts = [h.times[-1] for h in self.hours]
        self.offsets = list(accumulate((len(h.times) for h in self.hours), initial=0))
        self.before: tuple[list[float], list[float]] = ([], [])
        for which in (0, 1):
            running, previous = 0.0, 0.0
            for h in self.hours:
                values = h.values[which]
                if values[0] < previous:
                    running += previous
                self.before[which].append(running)
                running += h.resets[which][-1]
                previous = values[-1]

    def increase(self, which: int, start: float, end: float) -> float | None:
        """`slo_math.increase` of the good (0) or total (1) counter over [start, end]."""
        h0 = bisect_left(self.lasts, start)
        h1 = bisect_right(self.firsts, end) - 1
        if h0 >= len(self.hours) or h1 < 0 or h0 > h1:
            return None
        k0 = bisect_left(self.hours[h0].times, start)
        k1 = bisect_right(self.hours[h1].times, end) - 1
        count = self.offsets[h1] + k1 - (self.offsets[h0] + k0) + 1
        if count < 2:
            return None
        first, last = self.hours[h0], self.hours[h1]
        added = (self.before[which][h1] + last.resets[which][k1]) - (
            self.before[which][h0] + first.resets[which][k0]
        )
        result = last.values[which][k1] - first.values[which][k0] + added
        return slo_math.extrapolate(
            result, (first.times[k0], first.values[which][k0]), last.times[k1], count, start, end
        )


def load(engine: Engine, slo: str, start: datetime, end: datetime) -> list[Series]:
    """Per target, the stored hours overlapping [start, end] (samples outside are skipped by bisection)."""
    c = samples.slo_samples.c
    where = (c.slo == slo, c.at >= start.replace(minute=0, second=0, microsecond=0), c.at <= end)
    with engine.connect() as conn:
        keys = conn.execute(
            select(c.id, c.target, c.at, c.count.label("n")).where(*where).order_by(c.target, c.at)
        ).all()
        missing = [k.id for k in keys if (slo, k.target, k.at, k.n) not in _CACHE]
        if len(_CACHE) + len(missing) > _CACHE_MAX:
            _CACHE.clear()
            missing = [k.id for k in keys]
        for i in range(0, len(missing), 500):
            chunk = missing[i : i + 500]
            for row in conn.execute(
                select(c.target, c.at, c.count.label("n"), c.good, c.total).where(c.id.in_(chunk))
            ):
                _CACHE[(slo, row.target, row.at, row.n)] = _decode(row.n, row.good, row.total)
    by_target: dict[str, list[Hour]] = {}
    for k in keys:
        by_target.setdefault(k.target, []).append(_CACHE[(slo, k.target, k.at, k.n)])
    return [Series(hours) for hours in by_target.values()]


def summed(series: list[Series], which: int, start: float, end: float) -> float | None:
    """Sum over targets; a target without a value drops out; none at all -> None."""
    found = [v for s in series if (v := s.increase(which, start, end)) is not None]
    return sum(found) if found else None
