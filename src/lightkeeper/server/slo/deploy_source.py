"""Deployment SLIs: the share of finished deployments that did not succeed.

Read straight from the server's deployment store, as probe SLIs read its probe
results: the store holds every deployment exactly once, so the counts are exact where
scraping `deployments_total` would extrapolate a handful of events across a window.
A deployment counts when it finishes (its outcome is known only then), in the window
ending now; one still in progress counts nowhere. The environment is the one the
server evaluates (`--environment`, default the spec's first), matched to the `env`
CI reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Engine

from lightkeeper import slo_math
from lightkeeper.server.deploys import store
from lightkeeper.server.slo.reading import Reading
from lightkeeper.spec.models import SLO, DeploymentSLI
from lightkeeper.spec.sli_events import SUCCESS

SOURCE = "deployments"


def _counts(finished: Sequence[store.Deployment], start: datetime, end: datetime) -> tuple[float, float]:
    """(succeeded, finished) among deployments finished in (start, end]."""
    inside = [d for d in finished if d.finished_at is not None and start < d.finished_at <= end]
    return float(sum(1 for d in inside if d.status == SUCCESS)), float(len(inside))


def _ratio(good: float, total: float) -> float | None:
    return slo_math.error_ratio(total - good, total)


def finished(engine: Engine, slo: SLO, env: str, now: datetime, span_s: float) -> list[store.Deployment]:
    """The SLO's finished deployments of the last `span_s` seconds (one read serves every window)."""
    sli = slo.sli
    if not isinstance(sli, DeploymentSLI):
        raise TypeError(f"SLO {slo.name!r} is not a deployment SLI")
    wanted = set(sli.components) if sli.components else None
    return [
        d
        for d in store.listing(engine, env=env, since=now - timedelta(seconds=span_s))
        if d.status != store.IN_PROGRESS and (wanted is None or d.component in wanted)
    ]


def window_counts(done: Sequence[store.Deployment], now: datetime, window_s: float) -> tuple[float, float]:
    """(succeeded, finished) over the window ending now."""
    return _counts(done, now - timedelta(seconds=window_s), now)


def reading(engine: Engine, slo: SLO, env: str, now: datetime) -> Reading:
    period = slo_math.period_seconds(slo.period)
    longest = max(period, *(slo_math.duration_seconds(w) for w in slo_math.BURN_WINDOWS))
    done = finished(engine, slo, env, now, longest)
    windows = {
        w: _ratio(*_counts(done, now - timedelta(seconds=slo_math.duration_seconds(w)), now))
        for w in slo_math.BURN_WINDOWS
    }
    good, total = _counts(done, now - timedelta(seconds=period), now)
    return Reading(
        now.timestamp() if total > 0 else None,
        _ratio(good, total),
        windows,
        good=good,
        total=total,
        source=SOURCE,
    )
