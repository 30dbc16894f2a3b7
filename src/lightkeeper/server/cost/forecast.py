"""Month-end spend: what is already spent plus a straight-line trend over the trailing days.

A least-squares line through the last `window` complete days' cost is extended over the
rest of the month (a negative prediction counts as zero). The interval is ±1.96 residual
standard deviations per remaining day, summed as independent errors (√k), which is the
honest width when the days scatter around the trend; a perfectly linear history gives a
zero-width interval. With fewer than three days of history the median day is used.
"""

from __future__ import annotations

import calendar
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

Z95 = 1.96


@dataclass(frozen=True, slots=True)
class Forecast:
    month: str
    month_to_date_usd: float
    forecast_usd: float
    low_usd: float
    high_usd: float
    method: str
    days_used: int


def month_end(daily: Mapping[date, float], today: date, window: int = 14) -> Forecast:
    """`daily` holds each day's cost; days before `today` are complete, `today` is not used."""
    first = today.replace(day=1)
    last = today.replace(day=calendar.monthrange(today.year, today.month)[1])
    spent = sum(cost for day, cost in daily.items() if first <= day < today)
    history = [today - timedelta(days=n) for n in range(window, 0, -1)]
    history = [d for d in history if d >= min(daily, default=today)]
    remaining = [today + timedelta(days=n) for n in range((last - today).days + 1)]
    xs = [float((d - today).days) for d in history]
    ys = [daily.get(d, 0.0) for d in history]
    if len(history) >= 3:
        slope, intercept = statistics.linear_regression(xs, ys)
        predicted = [max(0.0, intercept + slope * (d - today).days) for d in remaining]
        residuals = [y - (intercept + slope * x) for x, y in zip(xs, ys, strict=True)]
        sigma = math.sqrt(sum(r * r for r in residuals) / (len(residuals) - 2)) if len(xs) > 2 else 0.0
        method = f"linear trend over {len(history)} days"
    else:
        typical = statistics.median(ys) if ys else 0.0
        predicted = [typical for _ in remaining]
        sigma = statistics.pstdev(ys) if len(ys) > 1 else 0.0
        method = f"median day over {len(history)} days"
    rest = sum(predicted)
    margin = Z95 * sigma * math.sqrt(len(remaining))
    total = spent + rest
    return Forecast(
        month=today.strftime("%Y-%m"),
        month_to_date_usd=round(spent, 6),
        forecast_usd=round(total, 6),
        low_usd=round(max(spent, total - margin), 6),
        high_usd=round(total + margin, 6),
        method=method,
        days_used=len(history),
    )
