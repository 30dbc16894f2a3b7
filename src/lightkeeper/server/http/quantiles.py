"""Latency quantiles from the roll-ups' stored sketches (merged, never re-sampled)."""

from __future__ import annotations

from collections.abc import Sequence

from lightkeeper.server.store import sketch


def merged_quantiles(blobs: Sequence[bytes], qs: Sequence[float]) -> tuple[float | None, ...]:
    merged = sketch.merge(blobs)
    return tuple(sketch.quantile(merged, q) for q in qs)
