"""Maintenance windows: is a probe being worked on at a given instant?

A one-off window is `[starts_at, ends_at)`. A recurring window repeats at every time
its cron expression names *in its own time zone* and lasts `duration_seconds` each
time; `starts_at` / `ends_at` bound the recurrence. Cron times are computed by
`cronsim` (the library the heartbeat probes use) on zone-aware datetimes, so a
"Sunday 02:30 Europe/Berlin" window follows the wall clock across daylight-saving
changes, and its duration stays real elapsed seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cronsim import CronSim


@dataclass(frozen=True, slots=True)
class Window:
    """One row of the `maintenance` table; an empty `probes` means every probe."""

    id: int
    title: str
    starts_at: datetime
    ends_at: datetime | None
    probes: tuple[str, ...] = ()
    cron: str | None = None
    duration_seconds: int | None = None
    timezone: str = "UTC"

    def applies_to(self, probe: str) -> bool:
        return not self.probes or probe in self.probes

    def occurrence_at(self, at: datetime) -> tuple[datetime, datetime] | None:
        """The `[start, end)` of the occurrence covering `at`, or None."""
        at = _aware(at)
        if at < self.starts_at or (self.ends_at is not None and at >= self.ends_at):
            return None
        if self.cron is None:
            return (self.starts_at, self.ends_at) if self.ends_at is not None else (self.starts_at, at)
        length = timedelta(seconds=self.duration_seconds or 0)
        local = at.astimezone(ZoneInfo(self.timezone))
        # cronsim's reverse iteration from `at` (inclusive) yields the latest start not after it
        latest = next(CronSim(self.cron, local.replace(microsecond=0) + timedelta(seconds=1), reverse=True))
        start = latest.astimezone(UTC)
        end = start + length
        if self.ends_at is not None:
            end = min(end, self.ends_at)
        return (start, end) if start <= at < end else None

    def covers(self, probe: str, at: datetime) -> bool:
        return self.applies_to(probe) and self.occurrence_at(at) is not None


@dataclass(frozen=True, slots=True)
class Calendar:
    """The windows known at one moment; the scheduler reloads it from the store periodically."""

    windows: Sequence[Window] = field(default_factory=tuple)

    def active_windows(self, at: datetime) -> list[Window]:
        return [w for w in self.windows if w.occurrence_at(at) is not None]

    def covers(self, probe: str, at: datetime) -> bool:
        return any(w.covers(probe, at) for w in self.windows)


def window_from_row(row: Any) -> Window:
    """Build a `Window` from a `maintenance` row mapping (probes stored as a JSON list)."""
    probes = row["probes"] or []
    return Window(
        id=int(row["id"]),
        title=str(row["title"] or ""),
        starts_at=_aware(row["starts_at"]),
        ends_at=_aware(row["ends_at"]) if row["ends_at"] is not None else None,
        probes=tuple(str(p) for p in probes),
        cron=row["cron"] or None,
        duration_seconds=int(row["duration_seconds"]) if row["duration_seconds"] is not None else None,
        timezone=str(row["timezone"] or "UTC"),
    )


def calendar_from_rows(rows: Iterable[Any]) -> Calendar:
    return Calendar(tuple(window_from_row(r) for r in rows))


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; the store writes UTC, so naive means UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
