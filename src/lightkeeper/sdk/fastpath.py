"""Counter and histogram updates without prometheus-client's per-call checks.

`Counter.inc` and `Histogram.observe` re-validate labels and arguments and search
the buckets linearly on every call; on the request path that is a third of
Lightkeeper's cost. This module reaches the value objects prometheus-client itself
updates (so multi-process files, exposition and exemplars are untouched) and finds
the bucket with `bisect`. It is checked once, against the public API on a scratch
registry; if prometheus-client's internals ever change shape, the public methods
are used instead.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, values

Add = Callable[[float], Any]
# (sum.inc, [bucket.inc, ...], upper bounds ending in +Inf); or None to use observe()
HistogramParts = tuple[Add, list[Add], list[float]]


def counter_add(child: Any) -> Add:
    inc = getattr(getattr(child, "_value", None), "inc", None) if _SHAPE_OK else None
    return inc if callable(inc) else child.inc  # type: ignore[no-any-return]


def histogram_parts(child: Any) -> HistogramParts | None:
    if not _SHAPE_OK:
        return None
    try:
        bounds = [float(b) for b in child._upper_bounds]
        parts = (child._sum.inc, [b.inc for b in child._buckets], bounds)
    except (AttributeError, TypeError):
        return None
    if len(parts[1]) != len(bounds) or not bounds or bounds[-1] != math.inf:
        return None
    return parts


def observe(child: Any, parts: HistogramParts | None, value: float) -> None:
    """Equivalent to `child.observe(value)`: Prometheus' `le` is inclusive."""
    if parts is None:
        child.observe(value)
        return
    parts[0](value)
    parts[1][bisect_left(parts[2], value)](1.0)


def _self_check() -> bool:
    # In-memory values only: in multi-process mode prometheus-client would otherwise
    # give these scratch metrics files in the shared directory (and /metrics lines).
    saved, values.ValueClass = values.ValueClass, values.MutexValue
    try:
        return _compare()
    finally:
        values.ValueClass = saved


def _compare() -> bool:
    registry = CollectorRegistry()
    bounds = (0.1, 1.0, 10.0)
    public = Histogram("lk_check_public", "x", buckets=bounds, registry=registry)
    fast = Histogram("lk_check_fast", "x", buckets=bounds, registry=registry)
    try:
        parts = (fast._sum.inc, [b.inc for b in fast._buckets], [float(b) for b in fast._upper_bounds])
    except AttributeError:
        return False
    for v in (0.0, 0.1, 0.10000001, 1.0, 5.0, 10.0, 11.0, 1e9):
        public.observe(v)
        parts[0](v)
        parts[1][bisect_left(parts[2], v)](1.0)

    def samples(name: str) -> list[tuple[str, float]]:
        return [
            (s.name.replace(name, ""), s.value)
            for m in registry.collect()
            if m.name == name
            for s in m.samples
            if not s.name.endswith("_created")
        ]

    return samples("lk_check_public") == samples("lk_check_fast")


_SHAPE_OK = _self_check()
