"""Maintenance windows as plain intervals, for roll-ups and uptime queries.

Recurring windows (cron start times in a time zone, each lasting `duration_seconds`) are
expanded with cronsim, which handles daylight-saving changes; a window that started
before the range but is still running is included.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cronsim import CronSim
from sqlalchemy import Connection, or_, select

from lightkeeper.server.store.tables import maintenance
from lightkeeper.server.store.uptime import Interval

ALL = "*"  # key for windows that cover every probe
_MAX_RECURRENCES = 10_000


def expand(row: Mapping[Any, Any], start: datetime, end: datetime) -> list[Interval]:
    """The row's windows overlapping [start, end)."""
    first, last = row["starts_at"], row["ends_at"]
    if not row["cron"]:
        if last is None or last <= start or first >= end:
            return []
        return [Interval(max(first, start), min(last, end))]
    length = timedelta(seconds=int(row["duration_seconds"] or 0))
    zone = ZoneInfo(row["timezone"] or "UTC")
    begin = max(first, start - length).astimezone(zone)
    found: list[Interval] = []
    for opened in CronSim(row["cron"], begin - timedelta(seconds=1)):
        opened_utc = opened.astimezone(UTC)
        if opened_utc >= end or (last is not None and opened_utc >= last) or len(found) >= _MAX_RECURRENCES:
            break
        closed = opened_utc + length
        if last is not None:
            closed = min(closed, last)
        if closed > start and opened_utc >= first:
            found.append(Interval(max(opened_utc, start), min(closed, end)))
    return found


def windows(conn: Connection, start: datetime, end: datetime) -> dict[str, list[Interval]]:
    """Windows overlapping [start, end) by probe name; `ALL` holds those for every probe."""
    rows = conn.execute(
        select(maintenance).where(
            maintenance.c.starts_at < end,
            or_(
                maintenance.c.ends_at.is_(None),
                maintenance.c.ends_at > start,
                maintenance.c.cron.is_not(None),
            ),
        )
    ).mappings()
    by_probe: dict[str, list[Interval]] = {}
    for row in rows:
        intervals = expand(row, start, end)
        if not intervals:
            continue
        for name in row["probes"] or [ALL]:
            by_probe.setdefault(name, []).extend(intervals)
    return by_probe


def for_probe(by_probe: Mapping[str, list[Interval]], probe: str) -> list[Interval]:
    return [*by_probe.get(ALL, ()), *by_probe.get(probe, ())]
