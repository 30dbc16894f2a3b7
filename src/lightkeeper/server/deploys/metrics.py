"""Deployment metrics on the server's `/metrics`, read from the store at scrape time.

Counts and histograms are rebuilt from the stored rows on every scrape, so every
replica exposes the same numbers and a restart loses nothing. Rows only ever move
from in progress to finished, so the counters never go down.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from lightkeeper import catalogue
from lightkeeper.server.deploys import store

Key = tuple[str, str]
log = logging.getLogger(__name__)


def _histogram(signal: catalogue.Signal, observed: dict[Key, list[float]]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(signal.name, signal.help, labels=list(signal.labels))
    bounds = signal.buckets or ()
    for key, values in sorted(observed.items()):
        cumulative = [(str(float(b)), float(sum(1 for v in values if v <= b))) for b in bounds]
        cumulative.append(("+Inf", float(len(values))))
        family.add_metric(list(key), cumulative, sum_value=sum(values))
    return family


def families(deployments: Iterable[store.Deployment], now: datetime | None = None) -> Iterator[Metric]:
    """The deployment families for the given rows (every row ever stored): the four raw
    ones, then DORA's frequency, change-failure and rollback rates over the trailing window."""
    since = (now or datetime.now(UTC)) - timedelta(days=catalogue.DORA_WINDOW_DAYS)
    recent: dict[Key, list[str]] = defaultdict(list)
    finished: dict[tuple[str, str, str], int] = defaultdict(int)
    running: dict[Key, int] = {}
    durations: dict[Key, list[float]] = defaultdict(list)
    lead_times: dict[Key, list[float]] = defaultdict(list)
    for d in deployments:
        key = (d.env, d.component)
        running.setdefault(key, 0)
        if d.status == store.IN_PROGRESS:
            running[key] = 1
            continue
        finished[(d.env, d.component, d.status)] += 1
        if d.finished_at is not None and _aware(d.finished_at) >= since:
            recent[key].append(d.status)
        if (duration := d.duration_seconds) is not None:
            durations[key].append(duration)
        if (lead := d.lead_time_seconds) is not None:
            lead_times[key].append(lead)
    total = CounterMetricFamily(
        catalogue.DEPLOYMENTS.name, catalogue.DEPLOYMENTS.help, labels=list(catalogue.DEPLOYMENTS.labels)
    )
    for labels, count in sorted(finished.items()):
        total.add_metric(list(labels), count)
    yield total
    yield _histogram(catalogue.DEPLOYMENT_DURATION_SECONDS, durations)
    yield _histogram(catalogue.DEPLOYMENT_LEAD_TIME_SECONDS, lead_times)
    in_progress = GaugeMetricFamily(
        catalogue.DEPLOYMENTS_IN_PROGRESS.name,
        catalogue.DEPLOYMENTS_IN_PROGRESS.help,
        labels=list(catalogue.DEPLOYMENTS_IN_PROGRESS.labels),
    )
    for key, value in sorted(running.items()):
        in_progress.add_metric(list(key), value)
    yield in_progress
    yield from _dora(recent)


def _dora(recent: dict[Key, list[str]]) -> Iterator[Metric]:
    """Rates of the components that finished a deployment in the window (a ratio of none is no value)."""
    days = catalogue.DORA_WINDOW_DAYS
    per_day, failing, rolled_back = (
        GaugeMetricFamily(s.name, s.help, labels=list(s.labels))
        for s in (
            catalogue.DEPLOYMENTS_PER_DAY,
            catalogue.DEPLOYMENT_CHANGE_FAILURE_RATIO,
            catalogue.DEPLOYMENT_ROLLBACK_RATIO,
        )
    )
    for key, statuses in sorted(recent.items()):
        n = len(statuses)
        per_day.add_metric(list(key), statuses.count("success") / days)  # as /api/deployments/dora
        failing.add_metric(list(key), sum(s in ("failure", "rolled_back") for s in statuses) / n)
        rolled_back.add_metric(list(key), statuses.count("rolled_back") / n)
    yield per_day
    yield failing
    yield rolled_back


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class DeploymentCollector(Collector):
    def __init__(self) -> None:
        self.engine: Engine | None = None

    def collect(self) -> Iterator[Metric]:
        """A store that cannot be read leaves the families out of this scrape (Prometheus
        sees them absent, not a failed scrape), so a database outage never costs the rest
        of `/metrics`, nor any other reader of the process registry."""
        if self.engine is None:
            return
        try:
            rows = store.listing(self.engine)
        except SQLAlchemyError as exc:
            log.warning("deployment metrics left out of this scrape: %s", type(exc).__name__)
            return
        yield from families(rows)


_collector: DeploymentCollector | None = None
_lock = threading.Lock()


def install(engine: Engine) -> DeploymentCollector:
    """Point the process's one collector at `engine` (registering it on first use)."""
    global _collector
    with _lock:
        if _collector is None:
            _collector = DeploymentCollector()
            REGISTRY.register(_collector)
        _collector.engine = engine
    return _collector
