"""Roll-ups: counts, failures, latency, quantiles, time in states, idempotence, retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from lightkeeper.server.store import sketch
from lightkeeper.server.store.rollup import apply_retention, floor, next_bucket, reroll, roll_up
from lightkeeper.server.store.tables import maintenance, results, rollups, state_changes

H = 3600.0
DAY0 = datetime(2026, 11, 1, tzinfo=UTC)


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return DAY0 + timedelta(hours=hour, minutes=minute, seconds=second)


def ok_latency(i: int) -> float:
    return 10.0 + (i * 37) % 200  # spread over 10..209 ms


@pytest.fixture
def history(engine: Engine) -> list[float]:
    """One check a minute 10:00-10:59 on Nov 1; every 10th fails; down 10:30-10:45."""
    rows: list[dict[str, Any]] = []
    latencies = []
    for i in range(60):
        failed = i % 10 == 0
        latency = None if failed else ok_latency(i)
        if latency is not None:
            latencies.append(latency)
        rows.append(
            {
                "probe": "api",
                "checked_at": at(10, i, 5),
                "ok": not failed,
                "status": "down" if failed else "up",
                "latency_ms": latency,
                "error": "expected status 200, got 503" if failed else None,
            }
        )
    # the server was offline for this check: not evidence about the target
    rows.append(
        {
            "probe": "api",
            "checked_at": at(10, 59, 30),
            "ok": False,
            "status": "no_data",
            "latency_ms": None,
            "error": None,
        }
    )
    with engine.begin() as conn:
        conn.execute(results.insert(), rows)
        conn.execute(
            state_changes.insert(),
            [
                {"probe": "api", "at": at(9), "state": "up"},
                {"probe": "api", "at": at(10, 30), "state": "down"},
                {"probe": "api", "at": at(10, 45), "state": "up"},
            ],
        )
        conn.execute(
            maintenance.insert(),
            [{"title": "db upgrade", "probes": ["api"], "starts_at": at(10, 40), "ends_at": at(10, 50)}],
        )
    return latencies


def row(engine: Engine, resolution: str, start: datetime) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            select(rollups).where(
                rollups.c.probe == "api", rollups.c.resolution == resolution, rollups.c.bucket_start == start
            )
        ).one()


def test_buckets_are_utc_aligned_and_months_have_their_own_lengths() -> None:
    assert floor(at(10, 59, 59), "hour") == at(10)
    assert floor(datetime(2026, 11, 17, 5, tzinfo=UTC), "month") == DAY0
    assert next_bucket(datetime(2026, 12, 1, tzinfo=UTC), "month") == datetime(2027, 1, 1, tzinfo=UTC)
    assert next_bucket(at(0), "day") == at(24)
    with pytest.raises(ValueError, match="unknown resolution"):
        floor(DAY0, "week")


def test_hour_and_day_rows_count_checks_failures_latency_and_time(
    engine: Engine, history: list[float]
) -> None:
    rolled = roll_up(engine, now=datetime(2026, 11, 2, 0, 2, tzinfo=UTC), resolutions=("hour", "day"))
    assert rolled == {"hour": 15, "day": 1}  # from the first data at 09:00
    hour = row(engine, "hour", at(10))
    assert (hour.checks, hour.failures) == (60, 6)
    assert hour.latency_sum_ms == pytest.approx(sum(history))
    # up 10:00-10:30 and 10:50-11:00; down 10:30-10:40; maintenance 10:40-10:50 (over down and up)
    assert (hour.up_seconds, hour.down_seconds, hour.maintenance_seconds, hour.no_data_seconds) == (
        2400.0,
        600.0,
        600.0,
        0.0,
    )
    day = row(engine, "day", DAY0)
    assert (day.checks, day.failures, day.latency_sum_ms) == (60, 6, pytest.approx(sum(history)))
    # no data before the first change at 09:00; up 09:00-10:30 and 10:50-24:00
    assert day.no_data_seconds == 9 * H and day.down_seconds == 600 and day.maintenance_seconds == 600
    assert day.up_seconds == 1.5 * H + 13 * H + 10 * 60
    ordered = sorted(history)
    merged = sketch.decode(day.sketch)
    for q in (0.5, 0.95, 0.99):
        exact = ordered[int(q * (len(ordered) - 1))]
        assert sketch.quantile(merged, q) == pytest.approx(exact, rel=sketch.RELATIVE_ACCURACY + 1e-9)


def test_minute_rows_hold_one_check_each(engine: Engine, history: list[float]) -> None:
    roll_up(engine, now=at(11, 2), resolutions=("minute",))
    first, second = row(engine, "minute", at(10, 0)), row(engine, "minute", at(10, 1))
    assert (first.checks, first.failures, first.sketch) == (1, 1, None)  # a failure has no latency
    assert (second.checks, second.failures, second.latency_sum_ms) == (1, 0, ok_latency(1))
    assert sketch.quantile(sketch.decode(second.sketch), 0.5) == pytest.approx(ok_latency(1), rel=0.01)


def test_month_rows_merge_the_days(engine: Engine, history: list[float]) -> None:
    roll_up(engine, now=datetime(2026, 11, 2, 0, 2, tzinfo=UTC), resolutions=("hour", "day"))
    with engine.begin() as conn:
        assert reroll(conn, "month", DAY0) == 1
    month, day = row(engine, "month", DAY0), row(engine, "day", DAY0)
    assert (month.checks, month.failures, month.latency_sum_ms) == (
        day.checks,
        day.failures,
        day.latency_sum_ms,
    )
    # the rest of November has no more changes: up until the month ends
    assert month.up_seconds == day.up_seconds + 29 * 24 * H
    assert sketch.quantile(sketch.decode(month.sketch), 0.95) == sketch.quantile(
        sketch.decode(day.sketch), 0.95
    )


def test_rerolling_a_bucket_gives_the_same_rows(engine: Engine, history: list[float]) -> None:
    now = datetime(2026, 11, 2, 0, 2, tzinfo=UTC)
    roll_up(engine, now=now, resolutions=("hour", "day"))
    before = row(engine, "hour", at(10))
    with engine.begin() as conn:
        reroll(conn, "hour", at(10, 17))  # any instant in the bucket names the bucket
        reroll(conn, "hour", at(10))
    assert row(engine, "hour", at(10)) == before
    assert roll_up(engine, now=now, resolutions=("hour", "day")) == {"hour": 0, "day": 0}
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(rollups)).scalar_one() == 15 + 1


def test_buckets_are_rolled_only_once_they_settled(engine: Engine, history: list[float]) -> None:
    assert roll_up(engine, now=at(11, 0, 30), resolutions=("hour",)) == {"hour": 1}  # 09:00 only
    assert roll_up(engine, now=at(11, 1), resolutions=("hour",)) == {"hour": 1}  # now 10:00


def test_retention_deletes_raw_rows_in_batches_and_keeps_the_aggregates(
    engine: Engine, history: list[float]
) -> None:
    roll_up(engine, now=at(11, 2), resolutions=("minute",))
    roll_up(engine, now=datetime(2026, 11, 2, 0, 2, tzinfo=UTC), resolutions=("hour", "day"))
    day_before = row(engine, "day", DAY0)
    deleted = apply_retention(engine, at(10) + timedelta(days=7, minutes=30), batch_size=7)
    assert deleted["results"] == 30  # checked before 10:30 a week later: 10:00:05 ... 10:29:05
    assert deleted["rollups_minute"] == 121 and deleted["rollups_hour"] == 0  # minutes 09:00-11:00
    deleted = apply_retention(engine, DAY0 + timedelta(days=40), batch_size=7)
    assert deleted["results"] == 31 and deleted["rollups_hour"] == 15
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(results)).scalar_one() == 0
    # the day row survives, and re-rolling it after its source expired keeps its counts
    with engine.begin() as conn:
        reroll(conn, "day", DAY0)
    assert row(engine, "day", DAY0) == day_before
