"""Heartbeat verdicts on constructed ping histories, including daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter

from lightkeeper.server.probes import HeartbeatHistory, Ping, evaluate_heartbeat, run_probe
from lightkeeper.server.probes.heartbeat import next_due
from lightkeeper.spec.probes import HeartbeatProbe, Probe

_PROBE: TypeAdapter[Probe] = TypeAdapter(Probe)
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def beat(**fields: Any) -> HeartbeatProbe:
    result = _PROBE.validate_python({"name": "backup", "type": "heartbeat", **fields})
    assert isinstance(result, HeartbeatProbe)
    return result


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def state(probe: HeartbeatProbe, pings: list[Ping], now: datetime, since: datetime = T0) -> str:
    return evaluate_heartbeat(probe, HeartbeatHistory(pings, since), now).state


def test_period_up_late_down() -> None:
    probe = beat(period_seconds=3600, grace_seconds=600)
    pings = [Ping(T0)]
    assert state(probe, pings, T0 + timedelta(minutes=59)) == "up"
    assert state(probe, pings, T0 + timedelta(minutes=65)) == "late"
    verdict = evaluate_heartbeat(probe, HeartbeatHistory(pings, T0), T0 + timedelta(minutes=71))
    assert verdict.state == "down"
    assert verdict.error == (
        "last ping at 2026-06-01 12:00:00 UTC; expected by 2026-06-01 13:00:00 UTC + 600 s grace"
    )


def test_new_probe_has_no_data_until_its_first_deadline() -> None:
    probe = beat(period_seconds=3600, grace_seconds=0)
    assert state(probe, [], T0 + timedelta(minutes=30)) == "no_data"
    verdict = evaluate_heartbeat(probe, HeartbeatHistory([], T0), T0 + timedelta(minutes=61))
    assert verdict.state == "down" and verdict.error is not None
    assert verdict.error.startswith("no ping since 2026-06-01 12:00:00 UTC")


def test_fail_ping_and_exit_code_are_down_until_next_success() -> None:
    probe = beat(period_seconds=3600)
    failed = evaluate_heartbeat(probe, HeartbeatHistory([Ping(T0, "fail")], T0), T0 + timedelta(minutes=1))
    assert (failed.state, failed.error) == ("down", "job reported failure at 2026-06-01 12:00:00 UTC")
    code = evaluate_heartbeat(
        probe, HeartbeatHistory([Ping(T0, "success", exit_code=3)], T0), T0 + timedelta(minutes=1)
    )
    assert code.error == "job reported failure (exit code 3) at 2026-06-01 12:00:00 UTC"
    recovered = [Ping(T0, "fail"), Ping(T0 + timedelta(minutes=5))]
    assert state(probe, recovered, T0 + timedelta(minutes=6)) == "up"
    assert state(probe, [Ping(T0, exit_code=0)], T0 + timedelta(minutes=1)) == "up"


def test_start_ping_alone_does_not_count_as_a_run() -> None:
    probe = beat(period_seconds=3600, grace_seconds=0)
    pings = [Ping(T0), Ping(T0 + timedelta(minutes=50), "start")]
    assert state(probe, pings, T0 + timedelta(minutes=61)) == "down"


def test_future_pings_are_ignored() -> None:
    probe = beat(period_seconds=60, grace_seconds=0)
    assert state(probe, [Ping(T0), Ping(T0 + timedelta(hours=1))], T0 + timedelta(minutes=2)) == "down"


def test_cron_early_ping_counts_for_the_coming_run() -> None:
    probe = beat(cron="0 2 * * *", timezone="UTC", grace_seconds=300)
    early = Ping(utc(2026, 6, 1, 1, 58))  # a fast clock: two minutes before 02:00
    assert next_due(probe, early.at) == utc(2026, 6, 2, 2, 0)
    assert state(probe, [early], utc(2026, 6, 1, 2, 30)) == "up"
    much_too_early = Ping(utc(2026, 6, 1, 1, 0))  # an hour early is not the 02:00 run
    assert state(probe, [much_too_early], utc(2026, 6, 1, 2, 6)) == "down"
    on_time = Ping(utc(2026, 6, 1, 2, 0, 30))
    assert next_due(probe, on_time.at) == utc(2026, 6, 2, 2, 0)
    assert state(probe, [on_time], utc(2026, 6, 2, 2, 3)) == "late"
    assert state(probe, [on_time], utc(2026, 6, 2, 2, 6)) == "down"


def test_frequent_cron_is_not_stretched_by_grace() -> None:
    probe = beat(cron="* * * * *", grace_seconds=300)
    assert next_due(probe, utc(2026, 6, 1, 10, 0, 0)) == utc(2026, 6, 1, 10, 1)


@pytest.mark.parametrize(
    ("last_run", "next_run", "hours"),
    [
        # spring forward: 02:00 does not exist on 29 March; cron runs at 03:00 CEST (01:00 UTC)
        (utc(2026, 3, 28, 1, 0), utc(2026, 3, 29, 1, 0), 24),
        (utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 0), 23),
        # fall back: 02:00 CEST on 25 October is 00:00 UTC; the next 02:00 CET is 25 h later
        (utc(2026, 10, 25, 0, 0), utc(2026, 10, 26, 1, 0), 25),
    ],
)
def test_cron_across_daylight_saving_changes(last_run: datetime, next_run: datetime, hours: int) -> None:
    probe = beat(cron="0 2 * * *", timezone="Europe/Berlin", grace_seconds=300)
    assert next_due(probe, last_run) == next_run
    assert next_run - last_run == timedelta(hours=hours)
    pings = [Ping(last_run)]
    # A naive "same UTC time tomorrow" would be wrong in both directions here.
    assert state(probe, pings, next_run - timedelta(minutes=1)) == "up"
    assert state(probe, pings, next_run + timedelta(minutes=3)) == "late"
    assert state(probe, pings, next_run + timedelta(minutes=6)) == "down"


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate_heartbeat(beat(period_seconds=60), HeartbeatHistory([], T0), datetime(2026, 6, 1))


async def test_run_probe_judges_heartbeats_from_history() -> None:
    probe = beat(period_seconds=3600)
    now = datetime.now(UTC)
    up = await run_probe(probe, heartbeat=HeartbeatHistory([Ping(now - timedelta(minutes=1))], now))
    assert (up.status, up.ok, up.error) == ("up", True, None)
    down = await run_probe(probe, heartbeat=HeartbeatHistory([Ping(now - timedelta(hours=3))], now))
    assert down.status == "down" and down.error is not None and "expected by" in down.error
    unknown = await run_probe(probe)
    assert unknown.status == "no_data"
