"""Check counts and latency sketches of probes over a window, from the store's roll-ups.

Whole UTC days come from day roll-ups and the window's ragged edges from hour, then
minute roll-ups, so a 365-day window reads about 365 rows per probe however many
checks ran. Time in states comes from `lightkeeper.server.store.queries.uptime`; this
module adds what the SLA needs beyond it: error rates and sketches pooled per component.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from lightkeeper.server.http import reads

_LEVELS: tuple[tuple[str, timedelta], ...] = (
    ("day", timedelta(days=1)),
    ("hour", timedelta(hours=1)),
    ("minute", timedelta(minutes=1)),
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Totals:
    up: float = 0.0
    down: float = 0.0
    no_data: float = 0.0
    maintenance: float = 0.0
    checks: int = 0
    failures: int = 0
    sketches: list[bytes] = field(default_factory=list)

    def add(self, row: reads.DayTotals) -> None:
        self.up += row.up
        self.down += row.down
        self.no_data += row.no_data
        self.maintenance += row.maintenance
        self.checks += row.checks
        self.failures += row.failures
        if row.sketch:
            self.sketches.append(row.sketch)

    @property
    def availability_percent(self) -> float | None:
        judged = self.up + self.down
        return None if judged <= 0 else 100.0 * self.up / judged

    @property
    def error_rate_percent(self) -> float | None:
        return None if self.checks == 0 else 100.0 * self.failures / self.checks


def _floor(moment: datetime, step: timedelta) -> datetime:
    return _EPOCH + ((moment - _EPOCH) // step) * step


def _ceil(moment: datetime, step: timedelta) -> datetime:
    floor = _floor(moment, step)
    return floor if floor == moment else floor + step


def plan(start: datetime, end: datetime) -> list[tuple[str, datetime, datetime]]:
    """(resolution, from, to) pieces that tile [start, end) with the coarsest buckets that fit."""
    pieces: list[tuple[str, datetime, datetime]] = []

    def tile(lo: datetime, hi: datetime, level: int) -> None:
        if lo >= hi or level >= len(_LEVELS):
            return
        name, step = _LEVELS[level]
        inner_lo, inner_hi = _ceil(lo, step), _floor(hi, step)
        if level == len(_LEVELS) - 1:
            # minute is the finest roll-up: a partial minute counts if its bucket starts inside
            inner_lo, inner_hi = _floor(lo, step), _ceil(hi, step)
        if inner_lo >= inner_hi:
            tile(lo, hi, level + 1)
            return
        tile(lo, inner_lo, level + 1)
        pieces.append((name, inner_lo, inner_hi))
        tile(inner_hi, hi, level + 1)

    tile(start, end, 0)
    return pieces


def totals(engine: Engine, probe_names: Sequence[str], start: datetime, end: datetime) -> dict[str, Totals]:
    out: dict[str, Totals] = {name: Totals() for name in probe_names}
    for resolution, lo, hi in plan(start, end):
        for probe, rows in reads.rollups(engine, probe_names, resolution, lo, hi).items():
            bucket = out.get(probe)
            if bucket is not None:
                for row in rows:
                    bucket.add(row)
    return out


def rounded(report: dict[str, Any]) -> dict[str, Any]:
    """Seconds to the millisecond and percentages to 4 places: stable, readable JSON."""
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in report.items()}
