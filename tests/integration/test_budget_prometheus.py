"""`lightkeeper budget check --prometheus` against a real Prometheus running the generated rules.

The test serves `http_requests_total` with a known bad share (1 request in 200 fails:
0.5 % against a 99 % objective, so half the error budget is left) and lets the real
`prometheus` binary scrape it every second with the rules `lightkeeper generate
--profile test` writes. The production profile would need a minute before the SLO
group first evaluates (`interval: 1m`) and five before the period's first 5-minute
count is recorded; the test profile divides every window and interval by 60 (30d ->
`ratio_rate12h`, 5m counts -> 5s, evaluated every second) without changing the
expressions, so the gate is given `--profile test` to read the record under its scaled name.

The counters come from one collector computed from a single tick count, so every
scrape sees good and bad in exactly the constructed proportion.
"""

from __future__ import annotations

import contextlib
import math
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from tests.support import services

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GOOD_PER_TICK, BAD_PER_TICK = 199, 1  # 0.5 % bad
OBJECTIVE = 99  # budget 1 %: half of it spent, 50 % left
TICKS_PER_SECOND = 20


class ConstructedTraffic(Collector):
    """`http_requests_total` growing by a fixed good/bad mix per tick since the test began."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def collect(self) -> Iterable[Metric]:
        ticks = int((time.monotonic() - self.started) * TICKS_PER_SECOND)
        family = CounterMetricFamily(
            "http_requests", "Constructed requests.", labels=["method", "route", "status_code"]
        )
        family.add_metric(["GET", "/api/items", "200"], GOOD_PER_TICK * ticks)
        family.add_metric(["GET", "/api/items", "500"], BAD_PER_TICK * ticks)
        yield family


@contextlib.contextmanager
def metrics_endpoint() -> Iterator[int]:
    registry = CollectorRegistry()
    registry.register(ConstructedTraffic())
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield int(server.server_port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


SPEC = """\
service: shop
environments:
  test: {{targets: ["127.0.0.1:{port}"]}}
slos:
  - {{name: availability, objective: {objective}, period: 30d, sli: {{kind: availability}}}}
"""


_CLI = "import sys; from lightkeeper.cli import main; sys.argv[0] = 'lightkeeper'; main()"


def lightkeeper(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process, as a pipeline runs it: exit codes and output are the real ones."""
    return subprocess.run(
        [sys.executable, "-c", _CLI, *args], capture_output=True, text=True, timeout=timeout
    )


prometheus = services.prometheus_server


def recorded(url: str, query: str) -> float | None:
    """The value of an instant query's only series, or None while the rule has none (or NaN)."""
    body = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=5).json()
    result = body["data"]["result"]
    if not result:
        return None
    value = float(result[0]["value"][1])
    return value if math.isfinite(value) else None


def wait_for_record(url: str, query: str, timeout: float, log: Path) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = recorded(url, query)
        if value is not None:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{query} had no value after {timeout:.0f}s\n{log.read_text()[-3000:]}")


@pytest.mark.timeout(60)
def test_budget_gate_reads_the_generated_rules_from_a_real_prometheus(tmp_path: Path) -> None:
    with metrics_endpoint() as metrics_port:
        spec = tmp_path / "lightkeeper.yaml"
        spec.write_text(SPEC.format(port=metrics_port, objective=OBJECTIVE))
        out = tmp_path / "observability"
        generated = lightkeeper("generate", "--spec", str(spec), "--out", str(out), "--profile", "test")
        assert generated.returncode == 0, generated.stderr
        config = out / "prometheus" / "prometheus.yml"
        assert "ratio_rate12h" in (out / "prometheus" / "rules" / "slo-availability.yml").read_text()

        log = tmp_path / "prometheus.log"
        with prometheus(config, tmp_path / "tsdb", log) as url:
            remaining = wait_for_record(
                url, 'slo:error_budget:remaining_ratio{service="shop",slo="availability"}', 30, log
            )
            # Prometheus's own budget record: both counters grow in lockstep, so the ratio is exact.
            assert remaining == pytest.approx(0.5, abs=1e-6)

            gate = ["budget", "check", "--prometheus", url, "--spec", str(spec), "--profile", "test"]
            passed = lightkeeper(*gate, "--min-remaining", "25%")
            assert passed.returncode == 0, passed.stdout + passed.stderr
            assert "ok    availability (test): 50.0% of the error budget left (>= 25%)" in passed.stdout

            held = lightkeeper(*gate, "--min-remaining", "75%")
            assert held.returncode == 1, held.stdout + held.stderr
            assert "FAIL  availability (test): 50.0% of the error budget left, below 75%" in held.stdout

            unknown = lightkeeper(*gate, "--slo", "latency")
            assert unknown.returncode == 2
            assert "unknown SLO 'latency'" in unknown.stderr

            # Read against the production profile's record name, the gate finds no data and says so.
            unscaled = lightkeeper("budget", "check", "--prometheus", url, "--spec", str(spec))
            assert unscaled.returncode == 0
            assert "no data" in unscaled.stdout

    closed = f"http://127.0.0.1:{services.closed_port()}"
    unreachable = lightkeeper(
        "budget", "check", "--prometheus", closed, "--spec", str(spec), "--timeout", "2"
    )
    assert unreachable.returncode == 2
    assert f"error: cannot reach {closed}/api/v1/query" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr
    misnamed = lightkeeper(
        "budget", "check", "--prometheus", closed, "--spec", str(spec), "--profile", "fast"
    )
    assert misnamed.returncode == 2
    assert "unknown profile 'fast'" in misnamed.stderr
