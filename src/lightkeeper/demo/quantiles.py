"""Quantiles from cumulative histogram buckets, computed the way PromQL does.

Prometheus' `histogram_quantile()` finds the bucket that holds the requested rank and
interpolates linearly inside it. Computing the demo's p50/p95/p99 with the same
rules means the numbers it prints are the numbers a Grafana panel over the same
series would show.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """The `q` quantile (0 <= q <= 1) of a histogram given as (upper bound, cumulative count).

    Follows PromQL: buckets are sorted by bound and forced monotonic, the rank
    `q * total` is located in the first bucket whose cumulative count reaches it,
    and the result is interpolated linearly between that bucket's lower and upper
    bound (0 is the lower bound of the first bucket; a first bucket bounded at or
    below 0 answers its bound). A rank that falls into the `+Inf` bucket answers
    the largest finite bound. Returns None where PromQL would answer NaN: no `+Inf` bucket, fewer than
    two buckets, or no observations.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be between 0 and 1, got {q}")
    # Series that share a bound (e.g. the same `le` from two routes) add up, as in PromQL.
    merged: dict[float, float] = {}
    for bound, count in buckets:
        merged[bound] = merged.get(bound, 0.0) + count
    ordered = sorted(merged.items())
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]):
        return None
    # Counts scraped at slightly different moments can dip; PromQL flattens such dips.
    monotonic: list[tuple[float, float]] = []
    running = 0.0
    for bound, count in ordered:
        running = max(running, count)
        monotonic.append((bound, running))
    total = monotonic[-1][1]
    if total <= 0:
        return None

    rank = q * total
    index = next(i for i, (_, count) in enumerate(monotonic) if count >= rank)
    if index == len(monotonic) - 1:
        return monotonic[-2][0]
    upper, count = monotonic[index]
    if index == 0:
        if upper <= 0:
            return upper
        lower, below = 0.0, 0.0
    else:
        lower, below = monotonic[index - 1]
    in_bucket = count - below
    if in_bucket <= 0:  # only q == 0 over an empty first bucket: PromQL's 0/0
        return None
    return lower + (upper - lower) * ((rank - below) / in_bucket)
