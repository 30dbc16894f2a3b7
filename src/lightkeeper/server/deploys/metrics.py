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


def families(deployments: Iterable[store.Deployment]) -> Iterator[Metric]:
    """The four deployment families for the given rows (every row ever stored)."""
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
