"""Reads the HTTP layer makes: uptime over a window, daily bars, latency quantiles.

Whole UTC days come from day roll-ups (one row per probe per day, summed in SQL) and
only the partial days at the window's edges, plus any day not rolled up yet, are
computed from raw state changes — so a 365-day window for 100 probes reads ~100 summed
rows and a handful of state changes instead of a year of history.

Latency quantiles merge the sketches of the coarsest roll-up buckets that lie inside the
window (months, then days, then hours, then minutes at the edges). Buckets that only
partly overlap the window are left out; how fine the edges go is bounded by the window's
length (minutes up to a day, hours up to 31 days, days beyond), so a year stays a few
dozen sketches a probe and the edge error is at most a day in a year.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Connection, Engine, String, func, or_, select, type_coerce

from lightkeeper.server.store import maintenance_windows, merged_cache, sketch
from lightkeeper.server.store.rollup import floor, history, next_bucket
from lightkeeper.server.store.tables import incidents, probes, rollups
from lightkeeper.server.store.uptime import IncidentStats, TimeInStates, incident_stats, time_in_states

DAY = timedelta(days=1)
QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True, slots=True)
class ProbeUptime:
    name: str
    times: TimeInStates
    incidents: IncidentStats
    latency_ms: tuple[float | None, float | None, float | None]  # p50, p95, p99

    def as_dict(self) -> dict[str, Any]:
        """The `/sla/uptime` object for this probe (field names are the public contract)."""
        p50, p95, p99 = self.latency_ms
        return {
            "name": self.name,
            "availability_percent": self.times.availability_percent,
            "uptime_seconds": self.times.up,
            "downtime_seconds": self.times.down,
            "no_data_seconds": self.times.no_data,
            "maintenance_seconds": self.times.maintenance,
            "incidents": self.incidents.count,
            "longest_incident_seconds": self.incidents.longest_seconds,
            "average_incident_seconds": self.incidents.average_seconds,
            "latency_p50_ms": p50,
            "latency_p95_ms": p95,
            "latency_p99_ms": p99,
        }


@dataclass(frozen=True, slots=True)
class DayBar:
    day: date
    times: TimeInStates
    incidents: int


def probe_names(conn: Connection, probe: str | None, start: datetime) -> list[str]:
    """The probe asked for, or every probe not deleted before the window began."""
    if probe is not None:
        return [probe]
    query = select(probes.c.name).where(or_(probes.c.deleted_at.is_(None), probes.c.deleted_at > start))
    return sorted(conn.execute(query).scalars())


def _ceil_day(at: datetime) -> datetime:
    floored = floor(at, "day")
    return floored if floored == at else floored + DAY


def _raw_times(
    conn: Connection, names: Sequence[str], ranges: Sequence[tuple[datetime, datetime]]
) -> dict[str, TimeInStates]:
    """Time in states from raw state changes over several ranges, for the given probes."""
    totals: dict[str, TimeInStates] = defaultdict(TimeInStates)
    ranges = [(lo, hi) for lo, hi in ranges if hi > lo]
    if not ranges or not names:
        return totals
    # one read of the changes and windows spanning every range, then pure math per range
    lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
    changes = history(conn, lo, hi, names)
    windows = maintenance_windows.windows(conn, lo, hi)
    for name in names:
        probe_changes, probe_windows = changes.get(name, []), maintenance_windows.for_probe(windows, name)
        for start, end in ranges:
            totals[name] += time_in_states(probe_changes, probe_windows, start, end)
    return totals


def _day_ranges(missing: Sequence[datetime]) -> list[tuple[datetime, datetime]]:
    ranges: list[tuple[datetime, datetime]] = []
    for day in sorted(missing):
        if ranges and ranges[-1][1] == day:
            ranges[-1] = (ranges[-1][0], day + DAY)
        else:
            ranges.append((day, day + DAY))
    return ranges


def _times(conn: Connection, names: Sequence[str], start: datetime, end: datetime) -> dict[str, TimeInStates]:
    """Whole months from month rows, whole days from day rows, the rest from raw changes.

    A year for 100 probes then sums ~1 200 month rows and a few thousand day rows instead
    of 36 500 day rows (which alone took SQLite ~70 ms).
    """
    first_day, last_day = _ceil_day(start), floor(end, "day")
    if first_day >= last_day:
        return _raw_times(conn, names, [(start, end)])
    totals: dict[str, TimeInStates] = defaultdict(TimeInStates)
    for edge in ((start, first_day), (last_day, end)):  # apart: one read spanning both is the window
        for name, times in _raw_times(conn, names, [edge]).items():
            totals[name] += times
    for level, lo, hi in _plan(first_day, last_day, ("month", "day")):
        months = _month_times(conn, names, lo, hi) if level == "month" else {}
        for name, times in months.items():
            totals[name] += times
        for name, times in _day_times(conn, [n for n in names if n not in months], lo, hi).items():
            totals[name] += times
    return totals


def _month_times(
    conn: Connection, names: Sequence[str], lo: datetime, hi: datetime
) -> dict[str, TimeInStates]:
    """Summed month rows over whole months [lo, hi), for the probes that have all of them.

    A month row is used only when its times add up to the month (the roll-up always writes
    them so); anything else, such as a hand-written row, falls back to the day rows.
    """
    expected, month = 0, lo
    while month < hi:
        expected, month = expected + 1, next_bucket(month, "month")
    length = (hi - lo).total_seconds()
    c = rollups.c
    summed = conn.execute(
        select(
            c.probe,
            func.count(),
            func.sum(c.up_seconds),
            func.sum(c.down_seconds),
            func.sum(c.no_data_seconds),
            func.sum(c.maintenance_seconds),
        )
        .where(c.resolution == "month", c.bucket_start >= lo, c.bucket_start < hi, c.probe.in_(names))
        .group_by(c.probe)
    )
    found = {}
    for name, months, up, down, no_data, planned in summed:
        times = TimeInStates(up, down, no_data, planned)
        if months == expected and abs(times.total - length) < 1:
            found[name] = times
    return found


def _day_times(
    conn: Connection, names: Sequence[str], first_day: datetime, last_day: datetime
) -> dict[str, TimeInStates]:
    """Whole days [first_day, last_day) from day rows; days not rolled up (yet) from raw changes."""
    totals: dict[str, TimeInStates] = defaultdict(TimeInStates)
    if not names:
        return totals
    expected = (last_day - first_day) // DAY
    c = rollups.c
    summed = conn.execute(
        select(
            c.probe,
            func.count(),
            func.sum(c.up_seconds),
            func.sum(c.down_seconds),
            func.sum(c.no_data_seconds),
            func.sum(c.maintenance_seconds),
        )
        .where(
            c.resolution == "day", c.bucket_start >= first_day, c.bucket_start < last_day, c.probe.in_(names)
        )
        .group_by(c.probe)
    )
    complete: set[str] = set()
    for name, days, up, down, no_data, planned in summed:
        totals[name] += TimeInStates(up, down, no_data, planned)
        if days == expected:
            complete.add(name)
    incomplete = sorted(set(names) - complete)
    if not incomplete:
        return totals
    rolled: dict[str, set[datetime]] = defaultdict(set)
    for name, day in conn.execute(
        select(c.probe, c.bucket_start).where(
            c.resolution == "day",
            c.probe.in_(incomplete),
            c.bucket_start >= first_day,
            c.bucket_start < last_day,
        )
    ):
        rolled[name].add(day)
    for name in incomplete:  # days not rolled up yet (or ever): from raw history
        missing = [first_day + i * DAY for i in range(expected) if first_day + i * DAY not in rolled[name]]
        totals[name] += _raw_times(conn, [name], _day_ranges(missing))[name]
    return totals


def _plan(lo: datetime, hi: datetime, levels: Sequence[str]) -> list[tuple[str, datetime, datetime]]:
    """Coarsest aligned buckets inside [lo, hi), coarse in the middle and finer at the edges."""
    if not levels or hi <= lo:
        return []
    level, finer = levels[0], levels[1:]
    first = floor(lo, level)
    if first < lo:
        first = next_bucket(first, level)
    last = floor(hi, level)
    if first >= last:
        return _plan(lo, hi, finer)
    return [*_plan(lo, first, finer), (level, first, last), *_plan(last, hi, finer)]


def _levels(start: datetime, end: datetime) -> tuple[str, ...]:
    span = end - start
    if span <= DAY:
        return ("hour", "minute")
    if span <= timedelta(days=31):
        return ("day", "hour")
    return ("month", "day")


def _range_sketches(conn: Connection, resolution: str, lo: datetime, hi: datetime) -> dict[str, bytes]:
    """One merged sketch per probe over a range of buckets (one indexed range scan)."""
    c = rollups.c
    blobs: dict[str, list[bytes | None]] = defaultdict(list)
    query = select(c.probe, c.sketch).where(
        c.resolution == resolution, c.bucket_start >= lo, c.bucket_start < hi, c.sketch.is_not(None)
    )
    for name, blob in conn.execute(query):
        blobs[name].append(blob)
    merged: dict[str, bytes] = {}
    for name, probe_blobs in blobs.items():
        built = probe_blobs[0] if len(probe_blobs) == 1 else sketch.merge(probe_blobs)
        if isinstance(built, bytes):
            merged[name] = built
        elif built is not None:
            merged[name] = sketch.encode(built)
    return merged


def _settled_split(
    plan: Sequence[tuple[str, datetime, datetime]], now: datetime
) -> list[tuple[str, datetime, datetime]]:
    """Cut ranges that reach into the last `SETTLED` days in two: a cacheable older part and
    the recent rest, so a year-long window re-merges only its last days on each request."""
    cut_at = now - merged_cache.SETTLED
    split: list[tuple[str, datetime, datetime]] = []
    for resolution, lo, hi in plan:
        cut = floor(cut_at, resolution)
        if lo < cut < hi:
            split += [(resolution, lo, cut), (resolution, cut, hi)]
        else:
            split.append((resolution, lo, hi))
    return split


def latency_quantiles(
    conn: Connection, names: Sequence[str], start: datetime, end: datetime, now: datetime
) -> dict[str, tuple[float | None, float | None, float | None]]:
    """p50, p95, p99 per probe from the roll-up buckets inside the window (module docstring)."""
    found: dict[str, tuple[float | None, float | None, float | None]] = {}
    plan = _plan(start, end, _levels(start, end))
    if not plan or not names:
        return found
    url = conn.engine.url.render_as_string(hide_password=True)
    blobs: dict[str, list[bytes | None]] = defaultdict(list)
    for resolution, lo, hi in _settled_split(plan, now):
        parts = merged_cache.get_or_build(
            (url, resolution, lo, hi), now, partial(_range_sketches, conn, resolution, lo, hi)
        )
        for name in names:
            if name in parts:
                blobs[name].append(parts[name])
    for name, probe_blobs in blobs.items():
        merged = sketch.merge(probe_blobs)
        p50, p95, p99 = (sketch.quantile(merged, q) for q in QUANTILES)
        found[name] = (p50, p95, p99)
    return found


def _incidents(
    conn: Connection, names: Sequence[str], start: datetime, end: datetime
) -> dict[str, list[tuple[datetime, datetime | None]]]:
    i = incidents.c
    rows = conn.execute(
        select(i.probe, type_coerce(i.started_at, String), type_coerce(i.resolved_at, String)).where(
            i.probe.in_(names), i.started_at < end, or_(i.resolved_at.is_(None), i.resolved_at > start)
        )
    )
    found: dict[str, list[tuple[datetime, datetime | None]]] = defaultdict(list)
    for name, started, resolved in rows:
        found[name].append((_instant(started), None if resolved is None else _instant(resolved)))
    return found


def _instant(value: str | datetime) -> datetime:
    """A stored timestamp read without its column type: SQLite's text, or PostgreSQL's datetime.

    The sqlite dialect parses timestamps with a regular expression; a year of incidents
    for 100 probes spent most of `/sla/uptime` there. Its text is ISO 8601 in UTC.
    """
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def uptime(
    engine: Engine, probe: str | None, start: datetime, end: datetime, *, now: datetime | None = None
) -> list[ProbeUptime]:
    """Time-weighted uptime, incidents and latency per probe over [start, end).

    The window is cut at `now` (default: the current time): the future has no data yet
    and is not reported as such.
    """
    end = min(end, now or datetime.now(UTC))
    with engine.connect() as conn:
        names = probe_names(conn, probe, start)
        if end <= start or not names:
            return [ProbeUptime(n, TimeInStates(), IncidentStats(), (None, None, None)) for n in names]
        times = _times(conn, names, start, end)
        latency = latency_quantiles(conn, names, start, end, now or datetime.now(UTC))
        opened = _incidents(conn, names, start, end)
    return [
        ProbeUptime(
            name,
            times.get(name, TimeInStates()),
            incident_stats(opened.get(name, []), start, end),
            latency.get(name, (None, None, None)),
        )
        for name in names
    ]


def _day_index(value: str | datetime, first: datetime) -> int:
    """Days from `first` to a day bucket's start, read without the timestamp type.

    On SQLite the full conversion (text -> datetime -> UTC) of 9 000 rows is most of a
    90-day status page's time; the day is all that is needed and the text starts with it.
    PostgreSQL hands back datetimes either way.
    """
    day = value.date() if isinstance(value, datetime) else date.fromisoformat(value[:10])
    return (day - first.date()).days


def daily_bars(
    engine: Engine, days: int, *, now: datetime | None = None, probe: str | None = None
) -> dict[str, list[DayBar]]:
    """The last `days` UTC days per probe, oldest first, today (so far) last."""
    now = now or datetime.now(UTC)
    today = floor(now, "day")
    first = today - (days - 1) * DAY
    c = rollups.c
    with engine.connect() as conn:
        names = probe_names(conn, probe, first)
        if not names:
            return {}
        # per probe, one slot per day (index 0 = `first`); None until known
        slots: dict[str, list[TimeInStates | None]] = {name: [None] * days for name in names}
        rows = conn.execute(
            select(
                c.probe,
                type_coerce(c.bucket_start, String),  # see _day_index
                c.up_seconds,
                c.down_seconds,
                c.no_data_seconds,
                c.maintenance_seconds,
            ).where(c.resolution == "day", c.bucket_start >= first, c.bucket_start < today)
        )
        for name, day, up, down, no_data, planned in rows:
            if name in slots:
                slots[name][_day_index(day, first)] = TimeInStates(up, down, no_data, planned)
        opened = _incidents(conn, names, first, now)
        unrolled = min((i for found in slots.values() for i, times in enumerate(found) if times is None))
        earliest = first + unrolled * DAY  # today at the latest: it is never rolled up
        changes = history(conn, earliest, now, names)
        windows = maintenance_windows.windows(conn, earliest, now)
        starts = [first + i * DAY for i in range(days + 1)]
        starts[-1] = now
        bars: dict[str, list[DayBar]] = {}
        for name in names:
            found = slots[name]
            probe_changes, probe_windows = changes.get(name, []), maintenance_windows.for_probe(windows, name)
            counts = _incidents_per_day(opened.get(name, []), first, days)
            bars[name] = [
                DayBar(
                    starts[i].date(),
                    times or time_in_states(probe_changes, probe_windows, starts[i], starts[i + 1]),
                    counts[i],
                )
                for i, times in enumerate(found)
            ]
    return bars


def _incidents_per_day(
    spans: Sequence[tuple[datetime, datetime | None]], first: datetime, days: int
) -> list[int]:
    """Incidents touching each day from `first` (what `incident_stats(...).count` gives per day).

    Each incident adds one to the days it overlaps, instead of every day scanning every
    incident: with a year of incidents the per-day scan was most of the status page.
    An incident touches a day when it opens before the day ends and closes after it starts.
    """
    counts = [0] * days
    for opened, resolved in spans:
        lo = max(0, (opened - first) // DAY)
        hi = days - 1 if resolved is None else min(days - 1, _ceil_days(resolved - first) - 1)
        for index in range(lo, hi + 1):
            counts[index] += 1
    return counts


def _ceil_days(span: timedelta) -> int:
    whole, rest = divmod(span, DAY)
    return int(whole) + (1 if rest else 0)
