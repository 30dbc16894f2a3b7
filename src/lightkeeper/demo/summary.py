"""Read a service's own /metrics back into the numbers a person asks for first.

The exposition text is parsed with prometheus-client's parser and the series are
found through the catalogue, so the summary reads exactly what a Prometheus server
scraping the same endpoint would store.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from lightkeeper import catalogue
from lightkeeper.demo.quantiles import histogram_quantile

RequestKey = tuple[str, str, str]
"""(method, route, status_code), the labels of `http_requests_total`."""

QUANTILES: tuple[tuple[str, float], ...] = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
_REQUESTS = catalogue.HTTP_REQUESTS.name
_BUCKET = f"{catalogue.HTTP_REQUEST_DURATION.name}_bucket"
_BUILD_INFO = catalogue.BUILD_INFO.name


@dataclass(frozen=True)
class HttpMetrics:
    """The request counter and the duration histogram buckets, as scraped."""

    requests: dict[RequestKey, int]
    # service, environment and version from the build-info gauge
    build: dict[str, str]
    # (method, route) -> [(upper bound, cumulative count), ...]
    duration_buckets: dict[tuple[str, str], list[tuple[float, float]]]

    @property
    def total(self) -> int:
        return sum(self.requests.values())


@dataclass(frozen=True)
class RouteSummary:
    method: str
    route: str
    requests: int
    server_errors: int
    p50_ms: float | None
    p95_ms: float | None


@dataclass(frozen=True)
class HttpSummary:
    total_requests: int
    by_status_class: dict[str, int]
    by_status_code: dict[str, int]
    # Share of requests answered with a 5xx: the golden-signal error rate. 4xx are the
    # callers' mistakes (bad passwords, scanners) and are shown by status class instead.
    error_rate: float
    latency_ms: dict[str, float | None]
    top_routes: list[RouteSummary]


@dataclass(frozen=True)
class Difference:
    method: str
    route: str
    status_code: str
    sent: int
    seen: int


@dataclass(frozen=True)
class Reconciliation:
    """Requests the client counted against requests the service counted, series by series."""

    sent: int
    seen: int
    matches: bool
    differences: list[Difference] = field(default_factory=list)


def parse_http_metrics(text: str) -> HttpMetrics:
    """The HTTP golden-signal series in a Prometheus text exposition.

    Raises ValueError when the text is not a valid exposition.
    """
    requests: Counter[RequestKey] = Counter()
    buckets: dict[tuple[str, str], list[tuple[float, float]]] = {}
    build: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == _REQUESTS:
                key = (labels["method"], labels["route"], labels["status_code"])
                requests[key] += int(sample.value)
            elif sample.name == _BUCKET:
                series = buckets.setdefault((labels["method"], labels["route"]), [])
                series.append((float(labels["le"]), float(sample.value)))
            elif sample.name == _BUILD_INFO:
                build = dict(labels)
    return HttpMetrics(requests=dict(requests), build=build, duration_buckets=buckets)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 2)


def _quantile_ms(q: float, buckets: list[tuple[float, float]]) -> float | None:
    return _ms(histogram_quantile(q, buckets))


def summarize_http(metrics: HttpMetrics, *, top: int = 8) -> HttpSummary:
    """Totals, status mix, error rate, latency quantiles and the busiest routes."""
    by_code: Counter[str] = Counter()
    by_route: Counter[tuple[str, str]] = Counter()
    errors_by_route: Counter[tuple[str, str]] = Counter()
    for (method, route, code), count in metrics.requests.items():
        by_code[code] += count
        by_route[(method, route)] += count
        if code.startswith("5"):
            errors_by_route[(method, route)] += count
    by_class: Counter[str] = Counter()
    for code, count in by_code.items():
        by_class[f"{code[:1]}xx"] += count

    total = metrics.total
    all_buckets = [b for series in metrics.duration_buckets.values() for b in series]
    busiest = sorted(by_route.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return HttpSummary(
        total_requests=total,
        by_status_class=dict(sorted(by_class.items())),
        by_status_code=dict(sorted(by_code.items())),
        error_rate=(by_class["5xx"] / total) if total else 0.0,
        latency_ms={name: _quantile_ms(q, all_buckets) for name, q in QUANTILES},
        top_routes=[
            RouteSummary(
                method=method,
                route=route,
                requests=count,
                server_errors=errors_by_route[(method, route)],
                p50_ms=_quantile_ms(0.5, metrics.duration_buckets.get((method, route), [])),
                p95_ms=_quantile_ms(0.95, metrics.duration_buckets.get((method, route), [])),
            )
            for (method, route), count in busiest
        ],
    )


def reconcile(sent: Mapping[RequestKey, int], seen: Mapping[RequestKey, int]) -> Reconciliation:
    """Compare, series by series, what a client sent with what the service recorded."""
    differences = [
        Difference(method, route, code, sent.get(key, 0), seen.get(key, 0))
        for key in sorted(set(sent) | set(seen))
        for method, route, code in [key]
        if sent.get(key, 0) != seen.get(key, 0)
    ]
    return Reconciliation(
        sent=sum(sent.values()), seen=sum(seen.values()), matches=not differences, differences=differences
    )
