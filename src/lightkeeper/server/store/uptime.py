"""Time-weighted uptime: pure functions over state-change histories, no database.

A probe is in a state from one change until the next, so downtime is the seconds
between going down and coming back, not a share of failed checks. Maintenance and
"no data" (server stopped or offline) are reported apart and excluded from both sides of
`availability_percent = 100 * up / (up + down)`; with neither up nor down time the
availability is None (JSON null), never NaN or a made-up 100 %.

Where categories overlap, maintenance wins over everything (the time was planned), then
no data: a probe cannot be down while nobody was looking.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

STATES = ("up", "down", "no_data")


@dataclass(frozen=True, slots=True)
class Change:
    """From `at` until the next change the probe is in `state` ("up" | "down" | "no_data")."""

    at: datetime
    state: str


@dataclass(frozen=True, slots=True)
class Interval:
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class TimeInStates:
    up: float = 0.0
    down: float = 0.0
    no_data: float = 0.0
    maintenance: float = 0.0

    def __add__(self, other: TimeInStates) -> TimeInStates:
        return TimeInStates(
            self.up + other.up,
            self.down + other.down,
            self.no_data + other.no_data,
            self.maintenance + other.maintenance,
        )

    @property
    def availability_percent(self) -> float | None:
        counted = self.up + self.down
        return None if counted <= 0 else 100.0 * self.up / counted

    @property
    def total(self) -> float:
        return self.up + self.down + self.no_data + self.maintenance


@dataclass(frozen=True, slots=True)
class IncidentStats:
    count: int = 0
    longest_seconds: float = 0.0
    average_seconds: float | None = None  # None without incidents: an empty average is undefined


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, disjoint, non-empty intervals covering the same time (overlaps joined)."""
    merged: list[Interval] = []
    for item in sorted((i for i in intervals if i.end > i.start), key=lambda i: i.start):
        if merged and item.start <= merged[-1].end:
            if item.end > merged[-1].end:
                merged[-1] = Interval(merged[-1].start, item.end)
        else:
            merged.append(item)
    return merged


def _overlap(start: datetime, end: datetime, disjoint: Sequence[Interval]) -> float:
    total = 0.0
    for item in disjoint:
        if item.start >= end:
            break
        lo, hi = max(start, item.start), min(end, item.end)
        if hi > lo:
            total += (hi - lo).total_seconds()
    return total


def segments(
    changes: Sequence[Change], start: datetime, end: datetime
) -> list[tuple[datetime, datetime, str]]:
    """The window cut into (from, to, state) pieces; before the first known change: no data.

    `changes` must be sorted by time and should include the last change at or before
    `start` (it gives the state the window opens in). States other than up/down count as
    no data.
    """
    pieces: list[tuple[datetime, datetime, str]] = []
    state, since = "no_data", start
    for change in changes:
        if change.at <= start:
            state = change.state
            continue
        if change.at >= end:
            break
        if change.at > since:
            pieces.append((since, change.at, state))
        state, since = change.state, change.at
    if end > since:
        pieces.append((since, end, state))
    return [(a, b, s if s in STATES else "no_data") for a, b, s in pieces]


def time_in_states(
    changes: Sequence[Change], maintenance: Iterable[Interval], start: datetime, end: datetime
) -> TimeInStates:
    """Seconds of [start, end) spent up, down, without data and in maintenance (sum = window)."""
    if end <= start:
        return TimeInStates()
    windows = merge_intervals(Interval(max(i.start, start), min(i.end, end)) for i in maintenance)
    seconds = {"up": 0.0, "down": 0.0, "no_data": 0.0}
    planned = 0.0
    for lo, hi, state in segments(changes, start, end):
        overlap = _overlap(lo, hi, windows)
        seconds[state] += (hi - lo).total_seconds() - overlap
        planned += overlap
    return TimeInStates(seconds["up"], seconds["down"], seconds["no_data"], planned)


def incident_stats(
    incidents: Iterable[tuple[datetime, datetime | None]], start: datetime, end: datetime
) -> IncidentStats:
    """Incidents touching [start, end): how many, the longest and the average duration.

    Durations are clipped to the window (an outage that began last month counts only its
    part in this one); an open incident lasts until `end`.
    """
    durations = []
    for opened, resolved in incidents:
        closed = end if resolved is None else resolved
        lo, hi = max(opened, start), min(closed, end)
        if opened < end and closed > start and hi >= lo:
            durations.append((hi - lo).total_seconds())
    if not durations:
        return IncidentStats()
    return IncidentStats(len(durations), max(durations), sum(durations) / len(durations))
