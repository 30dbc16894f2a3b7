"""DORA-style numbers over a window of finished deployments (pure functions).

Counted by finish time, since a deployment's outcome is known only then. Deployment
frequency counts successful deployments, as DORA defines it; every finished one is
given too. The change-failure rate counts failures and rollbacks over all finished.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from lightkeeper.server.deploys.store import OUTCOMES, Deployment


def _ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summary(deployments: Iterable[Deployment], start: datetime, end: datetime) -> dict[str, Any]:
    """Numbers for deployments finished in [start, end); rates are None with nothing finished."""
    done = [
        d
        for d in deployments
        if d.finished_at is not None and start <= d.finished_at < end and d.status != "in_progress"
    ]
    days = (end - start).total_seconds() / 86_400
    by_status = Counter(d.status for d in done)
    total = len(done)
    lead_times = [v for d in done if (v := d.lead_time_seconds) is not None]
    durations = [v for d in done if (v := d.duration_seconds) is not None]
    return {
        "deployments": total,
        "by_status": {status: by_status.get(status, 0) for status in OUTCOMES},
        "frequency_per_day": by_status.get("success", 0) / days,
        "finished_per_day": total / days,
        "change_failure_rate": _ratio(by_status.get("failure", 0) + by_status.get("rolled_back", 0), total),
        "rollback_rate": _ratio(by_status.get("rolled_back", 0), total),
        "median_lead_time_seconds": _median(lead_times),
        "median_duration_seconds": _median(durations),
    }
