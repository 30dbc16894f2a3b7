"""Time-weighted uptime on constructed histories; every expected number worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from lightkeeper.server.store.uptime import (
    Change,
    IncidentStats,
    Interval,
    TimeInStates,
    incident_stats,
    merge_intervals,
    time_in_states,
)

H = 3600.0


def t(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


# up since the day before; down 02:00-03:30; up; server off 06:00-07:00; up again
HISTORY = [
    Change(t(1, 0) - timedelta(hours=1), "up"),
    Change(t(1, 2), "down"),
    Change(t(1, 3, 30), "up"),
    Change(t(1, 6), "no_data"),
    Change(t(1, 7), "up"),
]
# overlaps the end of the outage and its recovery; overlaps the end of the gap and what follows
MAINTENANCE = [Interval(t(1, 3), t(1, 4)), Interval(t(1, 6, 30), t(1, 7, 30))]


def test_maintenance_and_no_data_overlapping_a_down_period() -> None:
    times = time_in_states(HISTORY, MAINTENANCE, t(1, 0), t(1, 10))
    # down 02:00-03:30 minus 03:00-03:30 in maintenance = 1 h
    # up 00-02 (2 h) + 03:30-06 minus 03:30-04 (2 h) + 07-10 minus 07-07:30 (2.5 h) = 6.5 h
    # no data 06-07 minus 06:30-07 = 0.5 h; maintenance 2 h; total = the 10 h window
    assert times == TimeInStates(up=6.5 * H, down=1 * H, no_data=0.5 * H, maintenance=2 * H)
    assert times.total == 10 * H
    assert times.availability_percent == pytest.approx(100 * 6.5 / 7.5)


def test_a_window_cuts_the_segments_it_starts_and_ends_in() -> None:
    times = time_in_states(HISTORY, [], t(1, 1), t(1, 3))
    assert times == TimeInStates(up=1 * H, down=1 * H)
    assert times.availability_percent == 50.0


def test_time_before_the_first_change_is_no_data_never_up() -> None:
    times = time_in_states(HISTORY, [], t(1, 0) - timedelta(hours=2), t(1, 0))
    assert times == TimeInStates(up=1 * H, no_data=1 * H)
    assert times.availability_percent == 100.0


def test_without_up_or_down_time_availability_is_null_not_nan() -> None:
    assert time_in_states([], [], t(1, 0), t(2, 0)) == TimeInStates(no_data=24 * H)
    assert time_in_states([], [], t(1, 0), t(2, 0)).availability_percent is None
    only_maintenance = time_in_states(HISTORY, [Interval(t(1, 0), t(2, 0))], t(1, 0), t(1, 10))
    assert only_maintenance == TimeInStates(maintenance=10 * H)
    assert only_maintenance.availability_percent is None
    assert time_in_states(HISTORY, [], t(1, 5), t(1, 5)) == TimeInStates()


def test_unknown_states_count_as_no_data() -> None:
    history = [Change(t(1, 0), "up"), Change(t(1, 1), "maintenance"), Change(t(1, 2), "down")]
    assert time_in_states(history, [], t(1, 0), t(1, 3)) == TimeInStates(up=H, down=H, no_data=H)


def test_a_calendar_month_in_a_non_utc_time_zone() -> None:
    # November 2026 in New York: starts 00:00 EDT (04:00 UTC), DST ends on Nov 1, so it
    # ends 00:00 EST (05:00 UTC on Dec 1): 30 days and 1 hour long.
    zone = ZoneInfo("America/New_York")
    start = datetime(2026, 11, 1, tzinfo=zone).astimezone(UTC)
    end = datetime(2026, 12, 1, tzinfo=zone).astimezone(UTC)
    assert (start, end) == (t(1, 4), t(1, 5, month=12))
    history = [
        Change(t(20, 0, month=10), "up"),
        Change(t(31, 23, month=10), "down"),  # an outage across the UTC month boundary
        Change(t(1, 5), "up"),
        Change(t(10, 12), "down"),
        Change(t(10, 13), "up"),
    ]
    month = time_in_states(history, [], start, end)
    window = 30 * 24 * H + H
    # down 04:00-05:00 UTC on Nov 1 (the part inside New York's November) + 1 h on Nov 10
    assert month == TimeInStates(up=window - 2 * H, down=2 * H)
    assert month.availability_percent == pytest.approx(100 * (window - 2 * H) / window)
    # the same history over the UTC month counts 5 h of the first outage instead
    assert time_in_states(history, [], t(1, 0), t(1, 0, month=12)).down == 6 * H

    opened = [
        (t(31, 23, month=10), t(1, 5)),  # clipped to 1 h
        (t(10, 12), t(10, 13)),  # 1 h
        (t(30, 23), None),  # still open: until the window's end, 6 h
        (t(1, 0, month=10), t(1, 2, month=10)),  # October: outside
    ]
    assert incident_stats(opened, start, end) == IncidentStats(3, 6 * H, (1 + 1 + 6) * H / 3)


def test_no_incidents_give_zero_count_and_no_average() -> None:
    assert incident_stats([], t(1, 0), t(2, 0)) == IncidentStats(0, 0.0, None)


def test_overlapping_maintenance_windows_are_not_counted_twice() -> None:
    windows = [Interval(t(1, 1), t(1, 3)), Interval(t(1, 2), t(1, 4)), Interval(t(1, 6), t(1, 5))]
    assert merge_intervals(windows) == [Interval(t(1, 1), t(1, 4))]
    times = time_in_states([Change(t(1, 0), "down")], windows, t(1, 0), t(1, 6))
    assert times == TimeInStates(down=3 * H, maintenance=3 * H)
