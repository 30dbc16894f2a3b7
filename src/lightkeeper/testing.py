"""Test helpers for services instrumented with Lightkeeper.

In the spirit of structlog's `capture_logs()`: assert on what your code logs and
counts, in your own test suite, without parsing stdout.

    from lightkeeper.testing import capture_logs, capture_metrics

    with capture_logs() as logs, capture_metrics() as metrics:
        client.post("/api/items", json={...})
    assert logs[-1]["event"] == "http_request"
    assert metrics.value("http_requests_total", route="/api/items", status_code="201") == 1
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from lightkeeper.sdk import logs as lk_logging
from lightkeeper.sdk import multiprocess
from lightkeeper.sdk.settings import load_settings

SampleKey = tuple[str, frozenset[tuple[str, str]]]

__all__ = ["MetricsDelta", "capture_logs", "capture_metrics", "parse_metrics", "sample_value"]


@contextmanager
def capture_logs() -> Iterator[list[dict[str, Any]]]:
    """Every log event (structlog and stdlib) of the block, after Lightkeeper's
    processors (context merged, secrets redacted) and instead of being printed."""
    if not lk_logging.is_configured():
        lk_logging.configure_logging(load_settings())
    sink: list[dict[str, Any]] = []
    lk_logging.start_capture(sink)
    try:
        yield sink
    finally:
        lk_logging.stop_capture(sink)


def _snapshot() -> dict[SampleKey, float]:
    values: dict[SampleKey, float] = {}
    for metric in multiprocess.exposition_registry().collect():
        for sample in metric.samples:
            values[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return values


@dataclass
class MetricsDelta:
    """What changed in the process's metrics since the block began."""

    before: dict[SampleKey, float]
    after: dict[SampleKey, float] | None = field(default=None)

    def _now(self) -> dict[SampleKey, float]:
        return self.after if self.after is not None else _snapshot()

    def samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        """(labels, increase) for every series of `name` that changed."""
        out = []
        for (sample_name, labels), value in sorted(self._now().items(), key=lambda kv: sorted(kv[0][1])):
            if sample_name != name:
                continue
            delta = value - self.before.get((sample_name, labels), 0.0)
            if delta:
                out.append((dict(labels), delta))
        return out

    def value(self, name: str, **labels: str) -> float:
        """Increase of `name` summed over the series matching the given labels."""
        wanted = set(labels.items())
        return sum(delta for got, delta in self.samples(name) if wanted <= set(got.items()))


@contextmanager
def capture_metrics() -> Iterator[MetricsDelta]:
    """Read metric increases of the block: `delta.value("http_requests_total", route=...)`."""
    delta = MetricsDelta(_snapshot())
    try:
        yield delta
    finally:
        delta.after = _snapshot()


def parse_metrics(text: str) -> dict[SampleKey, float]:
    """A `/metrics` response body as {(sample name, labels): value}."""
    values: dict[SampleKey, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return values


def sample_value(text_or_parsed: str | dict[SampleKey, float], name: str, **labels: str) -> float:
    """Sum of the samples called `name` whose labels include `labels`."""
    parsed = parse_metrics(text_or_parsed) if isinstance(text_or_parsed, str) else text_or_parsed
    wanted = set(labels.items())
    return sum(v for (n, got), v in parsed.items() if n == name and wanted <= set(got))
