"""prometheus-client objects built from the catalogue, once per process.

Every emitter asks `family(signal)` instead of constructing metrics itself, so a
second `instrument()` call, a second app in the same process, or a test suite that
instruments a fresh app per test reuses the same objects and never hits
prometheus-client's "Duplicated timeseries" error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.registry import Collector

from lightkeeper import catalogue
from lightkeeper.catalogue import Signal
from lightkeeper.sdk import multiprocess

Metric = Counter | Gauge | Histogram

# How a gauge combines across gunicorn / uvicorn workers in multi-process mode.
_GAUGE_MULTIPROCESS_MODE: dict[str, str] = {
    catalogue.HTTP_REQUESTS_IN_PROGRESS.name: "livesum",
    # live*: a reloaded server's old version disappears with its workers.
    catalogue.BUILD_INFO.name: "livemax",
    catalogue.HEALTH_CHECK_UP.name: "livemin",
    catalogue.DB_CONNECTIONS_ACTIVE.name: "livesum",
    catalogue.DB_CONNECTIONS_IDLE.name: "livesum",
    catalogue.DB_CONNECTIONS_MAX.name: "livesum",
    catalogue.CELERY_QUEUE_LENGTH.name: "livemax",
    catalogue.CELERY_WORKERS_UP.name: "livemax",
    catalogue.WORKFLOW_ENTITIES.name: "livemax",
    catalogue.WORKFLOW_STUCK_ENTITIES.name: "livemax",
    catalogue.WORKFLOW_OLDEST_PROCESSING_AGE.name: "livemax",
    catalogue.WORKFLOW_AGGREGATE.name: "livemax",
    catalogue.WORKFLOW_SAMPLE_AGE.name: "livemin",  # the freshest sampler's view
}

_lock = threading.Lock()
_families: dict[str, Metric] = {}

# Updates recorded in batches (the request path's, see middleware) must be applied
# before anything reads the values: every reader goes through `flush_pending()`.
_before_collect: list[Callable[[], None]] = []


def before_collect(callback: Callable[[], None]) -> None:
    """Run `callback` before metric values are read (a scrape, a test's sample read)."""
    if callback not in _before_collect:
        _before_collect.append(callback)


def flush_pending() -> None:
    for callback in list(_before_collect):
        callback()


class _FlushFirst(Collector):
    """Registered in the default registry ahead of every Lightkeeper family.

    prometheus-client collects in registration order, so any read of the registry
    (`generate_latest`, `get_sample_value`, a user's own exporter) applies the
    waiting updates first and never sees a request half-recorded.
    """

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> list[Any]:
        flush_pending()
        return []


REGISTRY.register(_FlushFirst())


class MetricConflictError(RuntimeError):
    """Another library already registered a metric under a Lightkeeper name."""


def family(signal: Signal) -> Any:
    """The process-wide metric object for `signal`, created on first use.

    Returns `Any` because prometheus-client's stubs give `labels()` a different
    return type per class; callers know which kind they asked for.
    """
    found = _families.get(signal.name)
    if found is not None:
        return found
    with _lock:
        found = _families.get(signal.name)
        if found is None:
            multiprocess.activate_if_needed()
            found = _create(signal)
            _families[signal.name] = found
    return found


def _create(signal: Signal) -> Metric:
    if signal.emitter != "sdk":
        raise ValueError(f"{signal.name} is emitted by {signal.emitter}, not by lightkeeper")
    kwargs: dict[str, Any] = {"labelnames": signal.labels, "registry": REGISTRY}
    try:
        if signal.kind == "counter":
            return Counter(signal.base_name, signal.help, **kwargs)
        if signal.kind == "gauge":
            mode = _GAUGE_MULTIPROCESS_MODE.get(signal.name, "livesum")
            return Gauge(signal.name, signal.help, multiprocess_mode=mode, **kwargs)  # type: ignore[arg-type]
        return Histogram(
            signal.name, signal.help, buckets=signal.buckets or Histogram.DEFAULT_BUCKETS, **kwargs
        )
    except ValueError as exc:
        if "Duplicated timeseries" in str(exc):
            raise MetricConflictError(
                f"another library already registered '{signal.name}' in prometheus_client's default "
                "registry; remove the other instrumentation (prometheus-fastapi-instrumentator, "
                "starlette-exporter, ...) - lightkeeper records the same signal"
            ) from None
        raise
