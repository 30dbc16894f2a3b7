"""What an SLI source reports for one SLO: the error ratios the shared math turns into a budget.

Three sources fill it (embedded samples, Prometheus's recorded rules, the server's
probe results); `evaluate.fields` is the only place that turns one into the
`/sla/status` fields, so the modes differ in where the ratios come from and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Reading:
    """One SLO as of `end` (unix seconds; None: nothing measured yet).

    `period_ratio` is bad ÷ total over the SLO's period, `window_ratios` the same per
    burn-rate window (`slo_math.BURN_WINDOWS`); None is no data. `good`/`total` are the
    period's counts when the source has them (events, or seconds for probe SLIs).
    """

    end: float | None
    period_ratio: float | None
    window_ratios: Mapping[str, float | None]
    good: float | None = None
    total: float | None = None
    source: str = "embedded"
    error: str | None = None
