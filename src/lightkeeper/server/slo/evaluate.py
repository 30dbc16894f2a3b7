"""Stored samples -> the `/sla/status` SLO fields, through the shared math only.

Every window is evaluated at the SLO's newest sample ("as of the last scrape"), not at
the wall clock: `increase()` would otherwise extrapolate the last interval's traffic
towards now, which is Prometheus's behaviour between scrapes but would make the
reported SLI wobble with the request time. Budgets are over the SLO's period; the
burn rates are the recorded-rule windows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from lightkeeper import slo_math
from lightkeeper.server.slo import deploy_source, index, probe_source, samples
from lightkeeper.server.slo.prometheus_source import PrometheusSource
from lightkeeper.server.slo.reading import Reading
from lightkeeper.spec.models import SLO, DeploymentSLI, ProbeSLI, Spec

_PAGE = ("critical", "high")
Series = list[list[slo_math.Sample]]


@dataclass(frozen=True)
class Loaded:
    """One SLO's per-target good and total counter series and the time they are read at."""

    good: Series
    total: Series
    end: float | None


def tiers(slo: SLO) -> list[slo_math.TierSpec]:
    """The spec's tiers, else the workbook's, with the same page/ticket switches as the generator."""
    if slo.alerting.tiers is not None:
        chosen = [
            slo_math.TierSpec(
                t.name, t.long_window, t.short_window, repr(t.budget_share), t.severity, t.for_ or "0s"
            )
            for t in slo.alerting.tiers
        ]
    else:
        chosen = list(slo_math.DEFAULT_TIERS)
    return [t for t in chosen if (slo.alerting.page if t.severity in _PAGE else slo.alerting.ticket)]


def load(engine: Engine, slo: SLO, now: datetime, span_seconds: float) -> Loaded:
    longest = max(span_seconds, *(slo_math.duration_seconds(w) for w in slo_math.BURN_WINDOWS))
    stored = samples.read(engine, slo.name, now - timedelta(seconds=longest), now)
    good = [[(s.at.timestamp(), s.good) for s in series] for series in stored.values()]
    total = [[(s.at.timestamp(), s.total) for s in series] for series in stored.values()]
    end = max((series[-1][0] for series in total if series), default=None)
    return Loaded(good, total, end)


def states(
    engine: Engine, spec: Spec, now: datetime, firing: Mapping[str, Sequence[str]], environment: str | None
) -> list[dict[str, Any]]:
    """The `slos` list, each SLO from its source: probe results, else Prometheus when configured
    (`server.prometheus_url`), else the embedded samples."""
    section = spec.server
    remote: dict[str, Reading] = {}
    metric = [s for s in spec.slos if not isinstance(s.sli, ProbeSLI)]
    if section.prometheus_url is not None and metric:
        env = environment if environment is not None else next(iter(spec.environments))
        source = PrometheusSource(
            section.prometheus_url,
            spec.service,
            env,
            section.prometheus_window_scale,
            section.prometheus_timeout_seconds,
        )
        remote, alerts = source.fetch(metric, {s.name: tiers(s) for s in metric}, now)
        firing = {**firing, **alerts}  # Prometheus alerts on metric SLOs in this mode, not the outbox
    out = []
    for slo in spec.slos:
        if isinstance(slo.sli, ProbeSLI):
            found = probe_source.reading(engine, slo, now)
        elif isinstance(slo.sli, DeploymentSLI) and slo.name not in remote:
            env_name = environment if environment is not None else next(iter(spec.environments))
            found = deploy_source.reading(engine, slo, env_name, now)
        else:
            found = remote.get(slo.name) or embedded(engine, slo, now)
        out.append(fields(slo, found, firing.get(slo.name, ())))
    return out


def state(engine: Engine, slo: SLO, now: datetime, firing: Sequence[str] = ()) -> dict[str, Any]:
    """One entry of the `slos` list from the embedded samples."""
    return fields(slo, embedded(engine, slo, now), firing)


def embedded(engine: Engine, slo: SLO, now: datetime) -> Reading:
    """The embedded scraper's samples as a reading.

    Read through `index` (hour summaries kept between calls) rather than `load`: the
    numbers of `slo_math`'s reference functions for each window, as the generated rules
    count it, but 100 SLOs over 30 days at 15 s take about a millisecond each.
    """
    period = slo_math.period_seconds(slo.period)
    longest = max(period, *(slo_math.duration_seconds(w) for w in slo_math.BURN_WINDOWS))
    series = index.load(engine, slo.name, now - timedelta(seconds=longest), now)
    newest = [t for s in series if (t := s.newest(now.timestamp())) is not None]
    end = max(newest, default=None)
    counted = None if end is None else index.counts(series, end, period, fresh=True)
    good, total = (None, None) if counted is None else (counted.good, counted.total)
    bad = None if good is None or total is None else max(0.0, total - good)
    windows = {w: _indexed_ratio(series, end, slo_math.duration_seconds(w)) for w in slo_math.BURN_WINDOWS}
    return Reading(end, slo_math.error_ratio(bad, total), windows, float(good or 0.0), float(total or 0.0))


def fields(slo: SLO, reading: Reading, firing: Sequence[str] = ()) -> dict[str, Any]:
    """One entry of the `slos` list (field names are a contract: see the README).

    Every number is the shared math applied to the reading's error ratios, whichever
    source produced them: the budget over the SLO's period, the burn rate per window.
    """
    period = slo_math.period_seconds(slo.period)
    ratio = reading.period_ratio
    rate = slo_math.burn_rate(ratio, slo.objective)
    remaining = slo_math.budget_remaining_ratio(ratio, slo.objective)
    minutes = slo_math.budget_minutes(slo.objective, period)
    burn = {
        w: _round(slo_math.burn_rate(reading.window_ratios.get(w), slo.objective))
        for w in slo_math.BURN_WINDOWS
    }
    return {
        "name": slo.name,
        "kind": slo.sli.kind,
        "source": reading.source,
        "source_error": reading.error,
        "objective_percent": slo.objective,
        "period": slo.period,
        "as_of": None if reading.end is None else _iso(reading.end),
        "good_events": reading.good,
        "total_events": reading.total,
        "sli_percent": None if ratio is None else _round((1 - ratio) * 100),
        "error_budget_minutes": _round(minutes),
        "error_budget_remaining_minutes": None if remaining is None else _round(remaining * minutes),
        "error_budget_remaining_ratio": _round(remaining),
        "burn_rates": burn,
        "time_to_exhaustion_seconds": _round(slo_math.time_to_exhaustion_seconds(remaining, rate, period)),
        "firing": list(firing),
        "no_data": ratio is None,
    }


def _indexed_ratio(series: list[index.Series], end: float | None, window: float) -> float | None:
    """The rules' `slo:sli_error:ratio_rate<w>` over indexed series."""
    return None if end is None else index.counts(series, end, window).error_ratio(window)


def history(
    engine: Engine, slo: SLO, now: datetime, days: int, environment: str | None = None
) -> list[dict[str, Any]]:
    """Budget remaining over the period ending at each UTC day's end (today: now), oldest first.

    Each day is counted as `/sla/status` counts it (today's entry is its current value):
    a probe's measured seconds, a deployment SLO's finished deployments in `environment`,
    or the indexed samples at the newest scrape before the day's end.
    """
    period = slo_math.period_seconds(slo.period)
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    span = timedelta(seconds=period + days * 86400)
    deployed = series = None
    if isinstance(slo.sli, DeploymentSLI):
        deployed = deploy_source.finished(engine, slo, environment or "", now, span.total_seconds())
    elif not isinstance(slo.sli, ProbeSLI):
        series = index.load(engine, slo.name, now - span, now)
    out: list[dict[str, Any]] = []
    for back in range(days - 1, -1, -1):
        day = today - timedelta(days=back)
        moment = min(now, day + timedelta(days=1))
        if deployed is not None:
            good, total = deploy_source.window_counts(deployed, moment, period)
            b = slo_math.budget(slo.objective, period, good, total if total > 0 else None)
        elif series is None:  # a probe SLI: its measured seconds, as its /sla/status entry
            b = probe_source.period_budget(engine, slo, moment, now)
        else:
            newest = [t for s in series if (t := s.newest(moment.timestamp())) is not None]
            counted = index.counts(series, max(newest), period, fresh=True) if newest else None
            b = slo_math.budget(
                slo.objective, period, *((None, None) if counted is None else (counted.good, counted.total))
            )
        out.append(
            {
                "day": day.date().isoformat(),
                "error_budget_remaining_ratio": _round(b.remaining_ratio),
                "error_budget_remaining_minutes": _round(b.remaining_minutes),
                "no_data": b.no_data,
            }
        )
    return out


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 9)
