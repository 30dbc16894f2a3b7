"""Heartbeat verdicts: pure schedule math over the pings a job sent.

No I/O here: the store keeps the pings, the scheduler calls `evaluate_heartbeat` on
every interval, and tests can hand in any history and any "now".

Schedule rules:

* period: the next ping is due `period_seconds` after the last success.
* cron: schedule times are computed by `cronsim` in the probe's time zone, so a
  daily `0 2 * * *` in Europe/Berlin is 23 h after the previous run on the day
  clocks spring forward (02:00 does not exist; the run is at 03:00) and 25 h after
  it on the day they fall back. A ping counts for the next scheduled time when it
  comes at most `grace_seconds` early and nearer to it than to the previous one (a
  job started by a slightly fast clock); otherwise it counts for the time before it.
* A success ping that is due but not yet `grace_seconds` late leaves the probe up and
  flags it `late`; past the grace it is down. A `fail` ping (or a non-zero exit code)
  makes it down at once, until the next success.
* With no ping yet, the schedule runs from `since` (when watching began); until the
  first deadline the verdict is "no data".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from cronsim import CronSim

from lightkeeper.spec.probes import HeartbeatProbe

PingKind = Literal["success", "start", "fail"]


@dataclass(frozen=True, slots=True)
class Ping:
    """One call of `/ping/<token>[/start|/fail|/<exit-code>]`; `at` is timezone-aware."""

    at: datetime
    kind: PingKind = "success"
    exit_code: int | None = None

    @property
    def failed(self) -> bool:
        return self.kind == "fail" or (self.exit_code is not None and self.exit_code != 0)


@dataclass(frozen=True, slots=True)
class HeartbeatHistory:
    pings: Sequence[Ping]
    since: datetime


@dataclass(frozen=True, slots=True)
class HeartbeatVerdict:
    state: Literal["up", "late", "down", "no_data"]
    due_at: datetime | None
    error: str | None


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("heartbeat times must be timezone-aware")
    return moment.astimezone(UTC)


def next_due(probe: HeartbeatProbe, last: datetime) -> datetime:
    """When the run after one that pinged (or began watching) at `last` is expected, in UTC."""
    last = _utc(last)
    if probe.period_seconds is not None:
        return last + timedelta(seconds=probe.period_seconds)
    assert probe.cron is not None  # the model guarantees period XOR cron
    zone = ZoneInfo(probe.timezone)
    local = last.astimezone(zone)
    following = next(CronSim(probe.cron, local)).astimezone(UTC)
    previous = next(CronSim(probe.cron, local, reverse=True)).astimezone(UTC)
    early_by = following - last
    if early_by <= timedelta(seconds=probe.grace_seconds) and early_by < last - previous:
        # an early run of `following`: the one after it is due next
        return next(CronSim(probe.cron, following.astimezone(zone))).astimezone(UTC)
    return following


def evaluate_heartbeat(probe: HeartbeatProbe, history: HeartbeatHistory, now: datetime) -> HeartbeatVerdict:
    now = _utc(now)
    finished = sorted(
        (p for p in history.pings if p.kind != "start" and _utc(p.at) <= now), key=lambda p: p.at
    )
    grace = timedelta(seconds=probe.grace_seconds)
    if finished and finished[-1].failed:
        last = finished[-1]
        code = f" (exit code {last.exit_code})" if last.exit_code not in (None, 0) else ""
        return HeartbeatVerdict("down", None, f"job reported failure{code} at {_stamp(last.at)}")
    reference = _utc(finished[-1].at) if finished else _utc(history.since)
    due = next_due(probe, reference)
    if now < due:
        return HeartbeatVerdict("up" if finished else "no_data", due, None)
    if now < due + grace:
        return HeartbeatVerdict("late" if finished else "no_data", due, None)
    seen = f"last ping at {_stamp(reference)}" if finished else f"no ping since {_stamp(reference)}"
    return HeartbeatVerdict("down", due, f"{seen}; expected by {_stamp(due)} + {probe.grace_seconds} s grace")


def _stamp(moment: datetime) -> str:
    return _utc(moment).strftime("%Y-%m-%d %H:%M:%S UTC")
