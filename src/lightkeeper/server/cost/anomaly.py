"""Cost spikes on daily spend: a robust z-score against the trailing window, and who caused it.

For each day, z = 0.6745 · (cost - median) / MAD over the previous `window` days
(Iglewicz and Hoaglin's modified z-score; |z| > 3.5 is their outlier rule). A flat
history has MAD 0, so the MAD is floored at 5 % of the median (and one cent): a steady
$10/day then needs about $12.6 before it counts, instead of any cent being infinite.
The driver is the (model, operation) whose cost rose most above its own trailing median.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

THRESHOLD = 3.5
MIN_HISTORY = 7
K = 0.6745


@dataclass(frozen=True, slots=True)
class Anomaly:
    day: date
    cost_usd: float
    baseline_usd: float
    z: float
    model: str
    operation: str
    driver_increase_usd: float

    @property
    def explanation(self) -> str:
        return (
            f"{self.day}: ${self.cost_usd:.2f} against a median of ${self.baseline_usd:.2f} "
            f"(robust z {self.z:.1f}); {self.operation} on {self.model} "
            f"rose by ${self.driver_increase_usd:.2f}"
        )


def _trailing(series: Mapping[date, float], day: date, window: int) -> list[float]:
    return [series.get(day - timedelta(days=n), 0.0) for n in range(1, window + 1)]


def detect(
    by_group: Mapping[tuple[str, str], Mapping[date, float]],
    days: list[date],
    window: int = 21,
    first_day: date | None = None,
) -> list[Anomaly]:
    """`by_group` maps (model, operation) to daily cost; `days` are the days to judge.

    Days before `first_day` (the first day with any data) are not history, so a new
    feature's first week is not judged against zeros it never had.
    """
    total: dict[date, float] = {}
    for series in by_group.values():
        for day, cost in series.items():
            total[day] = total.get(day, 0.0) + cost
    start = first_day or min(total, default=None)
    found: list[Anomaly] = []
    for day in days:
        if start is None or (day - start).days < MIN_HISTORY:
            continue
        history = _trailing(total, day, min(window, (day - start).days))
        median = statistics.median(history)
        mad = statistics.median(abs(x - median) for x in history)
        scale = max(mad, 0.05 * median, 0.01)
        cost = total.get(day, 0.0)
        z = K * (cost - median) / scale
        if z <= THRESHOLD:
            continue
        rises = {
            group: series.get(day, 0.0) - statistics.median(_trailing(series, day, len(history)))
            for group, series in by_group.items()
        }
        (model, operation), rise = max(rises.items(), key=lambda item: (item[1], item[0]))
        found.append(
            Anomaly(day, round(cost, 6), round(median, 6), round(z, 2), model, operation, round(rise, 6))
        )
    return found
