"""Schedule lag: how late each run started compared with its planned time.

Kept as a bounded window of recent samples so `/metrics` and the benchmark can read
p50/p99 without the scheduler growing memory over weeks.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LagSummary:
    samples: int
    last_seconds: float
    p50_seconds: float
    p99_seconds: float
    max_seconds: float


class LagWindow:
    def __init__(self, size: int = 10_000) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()  # read from the metrics thread, written by the loop

    def add(self, seconds: float) -> None:
        with self._lock:
            self._samples.append(max(seconds, 0.0))

    def summary(self) -> LagSummary:
        with self._lock:
            ordered = sorted(self._samples)
            last = self._samples[-1] if self._samples else 0.0
        if not ordered:
            return LagSummary(0, 0.0, 0.0, 0.0, 0.0)

        def rank(q: float) -> float:
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

        return LagSummary(len(ordered), last, rank(0.5), rank(0.99), ordered[-1])
