"""`lightkeeper demo` end to end: start the example app, drive it, read its signals back.

Each stage is a function of plain data so later stages (the monitor server, its
probes and SLOs) can be added to `run_demo` and to `DemoSummary` without touching
the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from lightkeeper.demo.app_process import DemoError, RunningApp, example_app, log_tail, redact_url
from lightkeeper.demo.llm_fake import LLMFake
from lightkeeper.demo.monitor import MonitorSummary, monitor, read_probes, read_slos
from lightkeeper.demo.product import ProductSummary, parse_product_metrics
from lightkeeper.demo.summary import (
    HttpMetrics,
    HttpSummary,
    Reconciliation,
    parse_http_metrics,
    reconcile,
    summarize_http,
)
from lightkeeper.demo.traffic import TrafficLog, run_traffic

# The route whose every answered call made one LLM call (a 502 is a failed one).
SUMMARY_ROUTE = ("POST", "/api/items/{item_id}/summary")
# The workflow gauges are sampled this often in the demo (the app's default is 60 s).
WORKFLOW_INTERVAL_SECONDS = 1

# Requests the client has seen answered may still be finishing inside the app
# (a background task after the response); give the counters this long to catch up.
SETTLE_SECONDS = 5.0


@dataclass(frozen=True)
class DemoOptions:
    duration: float = 20.0
    rps: float = 50.0
    port: int = 0
    database_url: str | None = None
    seed: int = 0
    ready_timeout: float = 60.0
    server: bool = True
    server_port: int = 0
    keep_running: bool = False


@dataclass(frozen=True)
class RequestCount:
    method: str
    route: str
    status_code: str
    count: int


@dataclass(frozen=True)
class TrafficSummary:
    """What the generator sent; /metrics and health scrapes are not part of it."""

    sent: int
    actions: dict[str, int]
    transport_errors: dict[str, int]
    requests: list[RequestCount]


@dataclass(frozen=True)
class HealthSnapshot:
    status_code: int
    body: Any


@dataclass(frozen=True)
class DemoSummary:
    service: dict[str, str]
    base_url: str
    database: str
    duration_seconds: float
    target_rps: float
    achieved_rps: float
    http: HttpSummary
    traffic: TrafficSummary
    reconciliation: Reconciliation
    health: HealthSnapshot
    product: ProductSummary = field(default_factory=ProductSummary)
    monitor: MonitorSummary | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_demo(
    options: DemoOptions,
    *,
    on_status: Callable[[str], None] = lambda _message: None,
    on_progress: Callable[[TrafficLog], None] | None = None,
    on_summary: Callable[[DemoSummary], None] = lambda _summary: None,
) -> DemoSummary:
    """Run the whole demo; raises DemoError with advice when something the user controls fails.

    `on_summary` gets the summary while the app and the server still run, so with
    `keep_running` it is shown before the wait for Ctrl-C (KeyboardInterrupt) begins.
    """
    with tempfile.TemporaryDirectory(prefix="lightkeeper-demo-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        database_url = options.database_url or f"sqlite:///{workdir / 'saas.db'}"
        database = redact_url(options.database_url) if options.database_url else "SQLite (temporary file)"
        # The app's writing assistant calls this local OpenAI-shaped fake with the real client.
        llm = stack.enter_context(LLMFake())
        on_status(f"Starting the example app (database: {database})")
        app = stack.enter_context(
            example_app(
                port=options.port,
                database_url=database_url,
                workdir=workdir,
                ready_timeout=options.ready_timeout,
                extra_env={
                    "SAAS_OPENAI_BASE_URL": f"{llm.url}/v1",
                    "SAAS_OPENAI_API_KEY": "demo-key-for-the-local-fake",
                    "SAAS_WORKFLOW_INTERVAL": str(WORKFLOW_INTERVAL_SECONDS),
                },
            )
        )
        on_status(f"Example app ready at {app.base_url}")
        running = None
        if options.server:
            on_status("Starting lightkeeper server (SQLite, temporary folder) with probes of the app")
            running = stack.enter_context(
                monitor(
                    app_url=app.base_url, database_url=database_url, workdir=workdir, port=options.server_port
                )
            )
            on_status(f"Status page at {running.status_page_url}")
        log = asyncio.run(
            run_traffic(
                app.base_url,
                duration=options.duration,
                rps=options.rps,
                seed=options.seed,
                on_progress=on_progress,
            )
        )
        metrics = settled_metrics(app, expected=log.total)
        llm_calls = sum(log.requests[(*SUMMARY_ROUTE, code)] for code in ("200", "502"))
        product = settled_product(app, llm_calls=llm_calls)
        health = read_health(app)
        monitored = None
        if running is not None:
            monitored = read_slos(running, read_probes(running))
        summary = DemoSummary(
            service=metrics.build,
            base_url=app.base_url,
            database=database,
            duration_seconds=round(log.elapsed, 2),
            target_rps=options.rps,
            achieved_rps=round(log.action_rate, 1),
            http=summarize_http(metrics),
            traffic=summarize_traffic(log),
            reconciliation=reconcile(log.requests, metrics.requests),
            health=health,
            product=product,
            monitor=monitored,
        )
        on_summary(summary)
        if options.keep_running:
            on_status("Both keep running; press Ctrl-C to stop them")
            while True:
                time.sleep(3600)
    return summary


def summarize_traffic(log: TrafficLog) -> TrafficSummary:
    return TrafficSummary(
        sent=log.total,
        actions=dict(sorted(log.actions.items())),
        transport_errors=dict(sorted(log.transport_errors.items())),
        requests=[RequestCount(*key, count) for key, count in sorted(log.requests.items())],
    )


def _fail(app: RunningApp, what: str) -> DemoError:
    tail = log_tail(app.log_path, secrets=app.secrets)
    return DemoError(f"{what}. Last lines of the example app's log:\n{tail}")


def scrape(app: RunningApp) -> str:
    headers: dict[str, str] = {}
    token = os.environ.get("LIGHTKEEPER_METRICS_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = httpx.get(f"{app.base_url}/metrics", headers=headers, timeout=10.0)
    except httpx.HTTPError as exc:
        raise _fail(app, f"could not read /metrics from the example app ({type(exc).__name__})") from None
    if response.status_code != 200:
        raise _fail(app, f"/metrics answered HTTP {response.status_code}")
    return response.text


def settled_metrics(app: RunningApp, *, expected: int, settle: float = SETTLE_SECONDS) -> HttpMetrics:
    """/metrics once the service has counted every request the client saw answered."""
    deadline = time.monotonic() + settle
    while True:
        try:
            metrics = parse_http_metrics(scrape(app))
        except ValueError as exc:
            raise _fail(app, f"/metrics is not valid Prometheus text ({exc})") from None
        if metrics.total >= expected or time.monotonic() >= deadline:
            return metrics
        time.sleep(0.05)


def settled_product(app: RunningApp, *, llm_calls: int, settle: float = SETTLE_SECONDS) -> ProductSummary:
    """The product signals once every LLM call is recorded (cost is recorded off the call path)
    and the workflow gauges have had a sample after the traffic."""
    time.sleep(WORKFLOW_INTERVAL_SECONDS + 0.2)
    deadline = time.monotonic() + settle
    while True:
        try:
            product = parse_product_metrics(scrape(app))
        except ValueError as exc:
            raise _fail(app, f"/metrics is not valid Prometheus text ({exc})") from None
        if product.llm_requests >= llm_calls or time.monotonic() >= deadline:
            return product
        time.sleep(0.05)


def read_health(app: RunningApp) -> HealthSnapshot:
    try:
        response = httpx.get(f"{app.base_url}/health", timeout=10.0)
    except httpx.HTTPError as exc:
        raise _fail(app, f"could not read /health from the example app ({type(exc).__name__})") from None
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text[:1000]
    return HealthSnapshot(status_code=response.status_code, body=body)
