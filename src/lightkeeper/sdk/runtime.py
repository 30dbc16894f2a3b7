"""Everything the middleware needs for one instrumented app, computed once.

Settings are turned into ready-to-compare bytes and sets here so the request path
does lookups, not string work.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from lightkeeper import catalogue
from lightkeeper.sdk import endpoints, multiprocess
from lightkeeper.sdk.health import HealthChecks
from lightkeeper.sdk.metrics import family
from lightkeeper.sdk.routes import RouteResolver
from lightkeeper.sdk.settings import Settings

EXCLUDED = "excluded"

# Every (method, route) a measured request has had, process-wide like the metric
# families: `http_requests_in_progress` shows each with 0 when idle, so a sum over
# it says 0 rather than "no data". Bounded as the request series are (method x
# route template); the middleware adds a key when it creates that key's series.
seen_routes: set[tuple[str, str]] = set()


class Runtime:
    def __init__(self, settings: Settings, checks: Iterable[Any]) -> None:
        self.settings = settings
        self.resolver = RouteResolver()
        self.checks = HealthChecks(
            checks,
            timeout=settings.health_timeout_seconds,
            cache_seconds=settings.health_cache_seconds,
            deadline=settings.health_deadline_seconds,
        )
        self.request_id_header_lower = settings.request_id_header.lower().encode("ascii")
        self.request_id_header_bytes = settings.request_id_header.encode("ascii")
        self.access_log = settings.access_log
        self.batched = settings.flush_interval_ms > 0
        health = settings.health_path
        # path -> what the middleware does with it: EXCLUDED (served by the app, not
        # measured) or an endpoint Lightkeeper answers itself; absent: measured.
        self.path_kinds: dict[str, str] = dict.fromkeys(settings.excluded_paths, EXCLUDED)
        self.path_kinds.update(
            {
                settings.metrics_path: "metrics",
                health: "health",
                f"{health}/live": "live",
                f"{health}/ready": "ready",
            }
        )
        if settings.rum_enabled:
            self.path_kinds.update({settings.rum_path: "rum", settings.rum_script_path: "rum_js"})
        self.identity = {
            "service": settings.service,
            "environment": settings.environment,
            "version": settings.version,
        }
        # id(scope) -> (scope, root_path at entry); read at scrape time only.
        self.inflight: dict[int, tuple[dict[str, Any], str]] = {}
        self._ttfb: dict[tuple[str, str], Any] = {}
        # Called as hook(exception, asgi_scope, route) once per unhandled exception
        # (tracing marks the span failed, errors reports to Sentry).
        self.exception_hooks: list[Callable[[BaseException, dict[str, Any], str], None]] = []
        # Set by lightkeeper.sdk.tracing: creates each request's server span (None: off).
        self.tracing: Any = None
        # Set by lightkeeper.sdk.rum when rum_enabled: answers the "rum" and "rum_js" paths.
        self.rum: Any = None
        _InflightCollector.track(self)

    def ttfb(self, method: str, route: str) -> Any:
        child = self._ttfb.get((method, route))
        if child is None:
            child = family(catalogue.HTTP_TIME_TO_FIRST_BYTE).labels(method, route)
            self._ttfb[(method, route)] = child
        return child

    async def serve_special(
        self, kind: str, scope: dict[str, Any], send: Any, rid_pair: tuple[bytes, bytes], receive: Any = None
    ) -> None:
        extra = [rid_pair]
        if kind in ("rum", "rum_js"):
            await self.rum.serve(kind, scope, receive, send, extra)
        elif kind == "metrics":
            await endpoints.metrics(scope, send, self.settings.metrics_token, extra)
        elif kind == "live":
            await endpoints.live(send, extra)
        elif kind == "ready":
            await endpoints.ready(self.checks, scope, self.settings, send, extra)
        else:
            await endpoints.detail(self.checks, self.identity, scope, self.settings, send, extra)


def _with_idle_routes(counts: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    """The in-flight counts plus a 0 for every (method, route) seen and idle now."""
    for key in list(seen_routes):  # one C-level copy: the loop thread may add keys
        counts.setdefault(key, 0)
    return counts


def _inflight_counts(runtimes: Iterable[Runtime]) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for runtime in list(runtimes):
        # list() copies the dict in one C call, safe while the loop thread mutates it
        for scope, base_root in list(runtime.inflight.values()):
            key = (scope.get("method", "OTHER"), runtime.resolver.template(scope, base_root))
            counts[key] = counts.get(key, 0) + 1
    return counts


class _InflightCollector(Collector):
    """`http_requests_in_progress` computed at scrape time from live requests.

    The route is only known once the router has run, so a gauge incremented at
    request start could not carry it. Reading the in-flight scopes when Prometheus
    scrapes gives exact per-route counts for the cost of a dict insert and pop per
    request. In multi-process mode a scrape reaches one worker only, so there a
    sampler thread copies each worker's counts into a file-backed gauge instead.
    """

    _runtimes: weakref.WeakSet[Runtime] = weakref.WeakSet()
    _lock = threading.Lock()
    _registered = False

    @classmethod
    def track(cls, runtime: Runtime) -> None:
        with cls._lock:
            cls._runtimes.add(runtime)
            if multiprocess.active_directory() is not None:
                _InflightSampler.ensure_running()
            elif not cls._registered:
                REGISTRY.register(cls())
                cls._registered = True

    def collect(self) -> Iterator[GaugeMetricFamily]:
        signal = catalogue.HTTP_REQUESTS_IN_PROGRESS
        metric = GaugeMetricFamily(signal.name, signal.help, labels=signal.labels)
        for (method, route), n in sorted(_with_idle_routes(_inflight_counts(self._runtimes)).items()):
            metric.add_metric([method, route], float(n))
        yield metric

    def describe(self) -> Iterator[GaugeMetricFamily]:
        signal = catalogue.HTTP_REQUESTS_IN_PROGRESS
        yield GaugeMetricFamily(signal.name, signal.help, labels=signal.labels)


class _InflightSampler:
    """Multi-process mode: once a second, this worker's in-flight counts go into the
    `livesum` gauge every worker's scrape adds up (so the value lags by <= 1 s)."""

    INTERVAL = 1.0
    _pid = 0

    @classmethod
    def ensure_running(cls) -> None:
        if cls._pid == os.getpid():
            return
        cls._pid = os.getpid()
        threading.Thread(target=cls._run, name="lightkeeper-inflight", daemon=True).start()

    @classmethod
    def _run(cls) -> None:
        gauge = family(catalogue.HTTP_REQUESTS_IN_PROGRESS)
        shown: dict[tuple[str, str], int] = {}
        while True:
            time.sleep(cls.INTERVAL)
            counts = _with_idle_routes(_inflight_counts(_InflightCollector._runtimes))
            for key in shown.keys() - counts.keys():
                counts[key] = 0
            for key, n in counts.items():
                if shown.get(key) != n:  # file-backed: write what changed only
                    gauge.labels(*key).set(n)
                    shown[key] = n


def _restart_after_fork() -> None:
    # gunicorn --preload forks workers from a master that already ran instrument().
    if _InflightCollector._runtimes and multiprocess.active_directory() is not None:
        _InflightSampler.ensure_running()


os.register_at_fork(after_in_child=_restart_after_fork)
