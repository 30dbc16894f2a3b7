"""Time windows named in requests: `window=30d` (rolling, ending now) or `month=2026-11`.

A calendar month is a month of the configured time zone, so a Berlin team's November
starts at 23:00 UTC on 31 October; windows are half-open [from, to) in UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

_WINDOW = re.compile(r"^(\d{1,4})([hd])$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
MIN_WINDOW = timedelta(hours=1)
MAX_WINDOW = timedelta(days=400)


class WindowError(ValueError):
    """A window or month the caller must rewrite; the message says how."""


@dataclass(frozen=True, slots=True)
class Window:
    label: str
    start: datetime
    end: datetime


def rolling(text: str, now: datetime) -> Window:
    match = _WINDOW.match(text)
    if not match:
        raise WindowError(f"window {text!r}: write hours or days, e.g. 1h, 24h, 30d, 365d")
    amount, unit = int(match.group(1)), match.group(2)
    span = timedelta(hours=amount) if unit == "h" else timedelta(days=amount)
    if not MIN_WINDOW <= span <= MAX_WINDOW:
        raise WindowError(f"window {text!r}: choose between 1h and 400d")
    return Window(text, now - span, now)


def month_bounds(text: str, zone: str) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month) of `YYYY-MM` in `zone`, in UTC."""
    match = _MONTH.match(text)
    if not match or not 1 <= int(match.group(2)) <= 12 or not 1970 <= int(match.group(1)) < 9999:
        # 9999 is refused too: its December would end past the last representable instant
        raise WindowError(f"month {text!r}: write year (1970-9998) and month, e.g. 2026-11")
    year, month = int(match.group(1)), int(match.group(2))
    tz = ZoneInfo(zone)
    start = datetime(year, month, 1, tzinfo=tz)
    following = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=tz)
    return start.astimezone(UTC), following.astimezone(UTC)


def calendar_month(text: str, zone: str, now: datetime) -> Window:
    """The month, cut at `now` (the future has no data yet)."""
    start, end = month_bounds(text, zone)
    if start >= now:
        raise WindowError(f"month {text!r} has not started yet")
    return Window(text, start, min(end, now))


def current_month(zone: str, now: datetime) -> str:
    return now.astimezone(ZoneInfo(zone)).strftime("%Y-%m")
