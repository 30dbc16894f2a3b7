"""Maintenance windows: one-off bounds, recurring cron windows in a time zone across DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lightkeeper.server.engine.maintenance import Calendar, Window, window_from_row

BERLIN_NIGHTLY = Window(
    id=2,
    title="nightly backup",
    starts_at=datetime(2026, 3, 1, tzinfo=UTC),
    ends_at=None,
    probes=("db",),
    cron="30 2 * * *",
    duration_seconds=1800,
    timezone="Europe/Berlin",
)


def test_one_off_window_is_half_open_and_per_probe() -> None:
    start = datetime(2026, 11, 3, 10, tzinfo=UTC)
    window = Window(1, "deploy", start, start + timedelta(hours=1), probes=("api",))
    calendar = Calendar([window])
    assert calendar.covers("api", start)
    assert calendar.covers("api", start + timedelta(minutes=59))
    assert not calendar.covers("api", start + timedelta(hours=1))
    assert not calendar.covers("api", start - timedelta(seconds=1))
    assert not calendar.covers("web", start + timedelta(minutes=5))
    assert calendar.active_windows(start) == [window]
    assert calendar.active_windows(start + timedelta(hours=2)) == []


def test_empty_probe_list_means_every_probe() -> None:
    start = datetime(2026, 11, 3, 10, tzinfo=UTC)
    assert Calendar([Window(1, "all", start, start + timedelta(hours=1))]).covers("anything", start)


def test_recurring_window_follows_local_time_across_dst() -> None:
    calendar = Calendar([BERLIN_NIGHTLY])
    # winter (UTC+1): 02:30 local is 01:30 UTC
    assert calendar.covers("db", datetime(2026, 3, 10, 1, 45, tzinfo=UTC))
    assert not calendar.covers("db", datetime(2026, 3, 10, 2, 30, tzinfo=UTC))
    # summer (UTC+2): 02:30 local is 00:30 UTC; 01:45 UTC is outside
    assert calendar.covers("db", datetime(2026, 7, 10, 0, 45, tzinfo=UTC))
    assert not calendar.covers("db", datetime(2026, 7, 10, 1, 45, tzinfo=UTC))
    # 29 March: 02:30 does not exist; the run starts at 03:00 CEST (01:00 UTC) and lasts 30 min
    assert calendar.covers("db", datetime(2026, 3, 29, 1, 10, tzinfo=UTC))
    assert not calendar.covers("db", datetime(2026, 3, 29, 1, 35, tzinfo=UTC))
    assert not calendar.covers("web", datetime(2026, 7, 10, 0, 45, tzinfo=UTC))


def test_recurrence_is_bounded_by_starts_and_ends() -> None:
    bounded = Window(
        3, "weekly", datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 16, 0, 20, tzinfo=UTC),
        cron="0 0 * * 1", duration_seconds=3600,
    )  # fmt: skip
    calendar = Calendar([bounded])
    assert calendar.covers("x", datetime(2026, 11, 9, 0, 30, tzinfo=UTC))
    assert calendar.covers("x", datetime(2026, 11, 16, 0, 10, tzinfo=UTC))
    assert not calendar.covers("x", datetime(2026, 11, 16, 0, 30, tzinfo=UTC))  # recurrence ended
    assert not calendar.covers("x", datetime(2026, 10, 26, 0, 30, tzinfo=UTC))  # before it began


def test_rows_from_the_store_become_windows() -> None:
    row = {
        "id": 7, "title": "t", "probes": ["a"], "starts_at": datetime(2026, 1, 1),
        "ends_at": None, "cron": "0 3 * * *", "duration_seconds": 60, "timezone": "UTC",
    }  # fmt: skip
    window = window_from_row(row)
    assert window.starts_at.tzinfo is UTC and window.probes == ("a",)
    assert window.covers("a", datetime(2026, 5, 5, 3, 0, 30, tzinfo=UTC))
