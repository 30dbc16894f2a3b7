"""Everything the middleware needs for one instrumented app, computed once.

Settings are turned into ready-to-compare bytes and sets here so the request path
does lookups, not string work.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from lightkeeper.sdk import catalogue, endpoints
from lightkeeper.sdk.health import HealthChecks
from lightkeeper.sdk.metrics import family
from lightkeeper.sdk.routes import RouteResolver
from lightkeeper.sdk.settings import Settings


class Runtime:
    def __init__(self, settings: Settings, checks: Iterable[Any]) -> None:
        self.settings = settings
        self.resolver = RouteResolver()
        self.checks = HealthChecks(
            checks, timeout=settings.health_timeout_seconds, cache_seconds=settings.health_cache_seconds
        )
        self.request_id_header_lower = settings.request_id_header.lower().encode("ascii")
        self.request_id_header_bytes = settings.request_id_header.encode("ascii")
        self.access_log = settings.access_log
        health = settings.health_path
        self.special_paths: dict[str, str] = {
            settings.metrics_path: "metrics",
            health: "health",
            f"{health}/live": "live",
            f"{health}/ready": "ready",
        }
        self.excluded_paths = frozenset(settings.excluded_paths)
        self.identity = {
            "service": settings.service,
            "environment": settings.environment,
            "version": settings.version,
        }
        # id(scope) -> (scope, root_path at entry); read at scrape time only.
        self.inflight: dict[int, tuple[dict[str, Any], str]] = {}
        self._ttfb: dict[tuple[str, str], Any] = {}
        self.exception_hooks: list[Callable[[BaseException], None]] = []
        _InflightCollector.track(self)

    def ttfb(self, method: str, route: str) -> Any:
        child = self._ttfb.get((method, route))
        if child is None:
            child = family(catalogue.HTTP_TIME_TO_FIRST_BYTE).labels(method, route)
            self._ttfb[(method, route)] = child
        return child

    async def serve_special(
        self, kind: str, scope: dict[str, Any], send: Any, rid_pair: tuple[bytes, bytes]
    ) -> None:
        extra = [rid_pair]
        if kind == "metrics":
            await endpoints.metrics(scope, send, self.settings.metrics_token, extra)
        elif kind == "live":
            await endpoints.live(send, extra)
        elif kind == "ready":
            await endpoints.ready(self.checks, send, extra)
        else:
            await endpoints.detail(self.checks, self.identity, send, extra)


class _InflightCollector(Collector):
    """`http_requests_in_progress` computed at scrape time from live requests.

    The route is only known once the router has run, so a gauge incremented at
    request start could not carry it. Reading the in-flight scopes when Prometheus
    scrapes gives exact per-route counts for the cost of a dict insert and pop per
    request. (In multi-process mode this collector cannot see other workers; see
    lightkeeper.sdk.multiprocess.)
    """

    _runtimes: weakref.WeakSet[Runtime] = weakref.WeakSet()
    _lock = threading.Lock()
    _registered = False

    @classmethod
    def track(cls, runtime: Runtime) -> None:
        with cls._lock:
            cls._runtimes.add(runtime)
            if not cls._registered:
                REGISTRY.register(cls())
                cls._registered = True

    def collect(self) -> Iterator[GaugeMetricFamily]:
        signal = catalogue.HTTP_REQUESTS_IN_PROGRESS
        counts: dict[tuple[str, str], int] = {}
        for runtime in list(self._runtimes):
            for scope, base_root in list(runtime.inflight.values()):
                method = scope.get("method", "OTHER")
                route = runtime.resolver.template(scope, base_root)
                counts[(method, route)] = counts.get((method, route), 0) + 1
        metric = GaugeMetricFamily(signal.name, signal.help, labels=signal.labels)
        for (method, route), n in sorted(counts.items()):
            metric.add_metric([method, route], float(n))
        yield metric

    def describe(self) -> Iterator[GaugeMetricFamily]:
        signal = catalogue.HTTP_REQUESTS_IN_PROGRESS
        yield GaugeMetricFamily(signal.name, signal.help, labels=signal.labels)
