"""The shortcuts that keep a year of history fast must give the answers of the long way."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, update

from lightkeeper.server.store import merged_cache, queries
from lightkeeper.server.store.rollup import reroll
from lightkeeper.server.store.tables import incidents, rollups, state_changes
from lightkeeper.server.store.uptime import incident_stats
from tests.server.store.test_queries import add_probes

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
DAY = timedelta(days=1)


def test_incidents_per_day_counts_what_incident_stats_counts_day_by_day() -> None:
    rng = random.Random(3)
    first = datetime(2026, 8, 1, tzinfo=UTC)
    days = 60
    spans: list[tuple[datetime, datetime | None]] = [
        (first - DAY, first),  # closes exactly as the first day starts: not in it
        (first + 3 * DAY, first + 3 * DAY),  # zero length at midnight: in no day
        (first + 5 * DAY, first + 6 * DAY),  # ends at a midnight: one day only
        (first - 2 * DAY, None),  # open: every day
    ]
    for _ in range(200):
        opened = first + timedelta(days=rng.uniform(-3, days - 1.3))  # before "now", as the query reads
        spans.append((opened, opened + timedelta(seconds=rng.expovariate(1 / 20000))))
    counts = queries._incidents_per_day(spans, first, days)
    starts = [first + i * DAY for i in range(days)]
    ends = [*starts[1:], starts[-1] + timedelta(hours=7)]  # the last day is today, up to now
    expected = [incident_stats(spans, lo, hi).count for lo, hi in zip(starts, ends, strict=True)]
    assert counts == expected


def _year(engine: Engine) -> None:
    add_probes(engine, "a", "b")
    rng = random.Random(5)
    start = datetime(2025, 11, 1, tzinfo=UTC)
    rows = [{"probe": p, "at": start, "state": "up"} for p in ("a", "b")]
    at = start
    while at < NOW - 2 * DAY:
        at += timedelta(hours=rng.uniform(20, 200))
        rows.append({"probe": rng.choice("ab"), "at": at, "state": rng.choice(["down", "no_data"])})
        rows.append(
            {"probe": rows[-1]["probe"], "at": at + timedelta(minutes=rng.uniform(1, 90)), "state": "up"}
        )
    with engine.begin() as conn:
        conn.execute(state_changes.insert(), rows)
        conn.execute(
            incidents.insert(), [{"probe": "a", "started_at": start + DAY, "resolved_at": start + 2 * DAY}]
        )
        day = start
        while day < NOW.replace(hour=0, minute=0):
            reroll(conn, "day", day)
            day += DAY
        month = start
        while month < datetime(2026, 11, 1, tzinfo=UTC):
            reroll(conn, "month", month)
            month = month.replace(year=month.year + month.month // 12, month=month.month % 12 + 1)


def _seconds(engine: Engine) -> list[tuple[str, float, float, float]]:
    found = queries.uptime(engine, None, NOW - timedelta(days=365), NOW, now=NOW)
    return [(p.name, round(p.times.up, 3), round(p.times.down, 3), round(p.times.no_data, 3)) for p in found]


def test_month_rows_give_what_day_rows_give_and_bad_month_rows_are_ignored(engine: Engine) -> None:
    _year(engine)
    with_months = _seconds(engine)
    assert any(down > 0 for _, _, down, _ in with_months)
    with engine.begin() as conn:  # a month row whose times do not fill the month is not trusted
        conn.execute(
            update(rollups)
            .where(rollups.c.resolution == "month", rollups.c.probe == "a")
            .values(up_seconds=1.0)
        )
    assert _seconds(engine) == with_months
    with engine.begin() as conn:
        conn.execute(delete(rollups).where(rollups.c.resolution == "month"))
    assert _seconds(engine) == with_months


def test_recent_part_of_a_range_is_split_off_for_the_cache() -> None:
    plan = [("day", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 20, tzinfo=UTC))]
    cut = (NOW - merged_cache.SETTLED).replace(hour=0, minute=0)
    assert queries._settled_split(plan, NOW) == [
        ("day", datetime(2026, 11, 1, tzinfo=UTC), cut),
        ("day", cut, datetime(2026, 11, 20, tzinfo=UTC)),
    ]
    old = [("month", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))]
    assert queries._settled_split(old, NOW) == old
