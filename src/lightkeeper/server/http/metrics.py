"""The server's own `/metrics`: probe results the way a blackbox exporter exposes them.

Values are read from the store at scrape time (a custom collector), so every replica
exposes the same, current state and nothing has to be kept in step in memory. The
SDK's `/metrics` renders the default registry, where this collector is registered once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from lightkeeper import catalogue
from lightkeeper.server.http import reads

LagSource = Callable[[], float | None]
log = logging.getLogger(__name__)


def _store_families(engine: Engine) -> Iterator[Metric]:
    success = GaugeMetricFamily(catalogue.PROBE_SUCCESS.name, catalogue.PROBE_SUCCESS.help, labels=["probe"])
    duration = GaugeMetricFamily(
        catalogue.PROBE_DURATION_SECONDS.name, catalogue.PROBE_DURATION_SECONDS.help, labels=["probe"]
    )
    expiry = GaugeMetricFamily(
        catalogue.PROBE_TLS_EXPIRY_SECONDS.name, catalogue.PROBE_TLS_EXPIRY_SECONDS.help, labels=["probe"]
    )
    for view in reads.probes(engine):
        if view.state in ("up", "down"):
            success.add_metric([view.name], 1.0 if view.state == "up" else 0.0)
        if view.last_latency_ms is not None:
            duration.add_metric([view.name], view.last_latency_ms / 1000)
        if view.last_tls_expiry_seconds is not None:
            expiry.add_metric([view.name], view.last_tls_expiry_seconds)
    yield success
    yield duration
    yield expiry
    yield GaugeMetricFamily(
        catalogue.SERVER_INCIDENTS_OPEN.name,
        catalogue.SERVER_INCIDENTS_OPEN.help,
        value=reads.open_incident_count(engine),
    )
    yield GaugeMetricFamily(
        catalogue.SERVER_OUTBOX_DEPTH.name,
        catalogue.SERVER_OUTBOX_DEPTH.help,
        value=reads.outbox_depth(engine),
    )


class ServerCollector(Collector):
    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.scheduler_lag: LagSource = lambda: None

    def collect(self) -> Iterator[Metric]:
        """A store that cannot be read leaves the probe and server families out of this
        scrape, so a database outage never fails `/metrics` nor any other reader of the
        process registry; the scheduler lag, read from memory, is still reported."""
        engine = self.engine
        if engine is None:
            return
        try:
            families = list(_store_families(engine))
        except SQLAlchemyError as exc:
            log.warning("server metrics left out of this scrape: %s", type(exc).__name__)
            families = []
        yield from families
        lag = self.scheduler_lag()
        if lag is not None:
            yield GaugeMetricFamily(
                catalogue.SERVER_SCHEDULER_LAG_SECONDS.name,
                catalogue.SERVER_SCHEDULER_LAG_SECONDS.help,
                value=lag,
            )


_collector: ServerCollector | None = None
_lock = threading.Lock()


def install(engine: Engine, scheduler_lag: LagSource | None = None) -> ServerCollector:
    """Point the process's one collector at `engine` (registering it on first use)."""
    global _collector
    with _lock:
        if _collector is None:
            _collector = ServerCollector()
            REGISTRY.register(_collector)
        _collector.engine = engine
        if scheduler_lag is not None:
            _collector.scheduler_lag = scheduler_lag
    return _collector
