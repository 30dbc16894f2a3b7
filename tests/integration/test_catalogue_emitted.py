"""Every catalogue entry marked as emitted by the SDK is produced by the real SDK.

Two real processes are driven through success and failure and their metrics read:

- a web process (tests/integration/catalogue_driver.py): the core test app, the
  SQLAlchemy, Redis, httpx and requests integrations against the local PostgreSQL and
  Redis, spans exported to a closed port, a real sentry-sdk sending to a local receiver
  with a budget of one event per fingerprint, and INFO logs sampled at 0.5;
- a prefork Celery worker on the local Redis broker (the fixture of test_celery.py),
  running tasks that succeed, fail, retry and overrun their soft time limit, read on
  its own metrics port while its sampler reports queue length and live workers.

A family counts as produced only once it recorded something (see `produced`): a
series exposed at 0 since start-up proves nothing. Entries the catalogue marks
`planned` must stay absent: once something emits them, the marker must go.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator

import pytest

from lightkeeper import catalogue
from tests.integration.catalogue_driver import REPEATED_FAILURES
from tests.integration.test_celery import Worker, worker  # noqa: F401  (the real worker fixture)
from tests.support import services
from tests.support.receivers import SentryReceiver

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DRIVER_TIMEOUT = 45.0
CELERY_METRICS_TIMEOUT = 15.0

Sample = tuple[str, dict[str, str], float]


def produced(samples: Iterable[Sample]) -> set[str]:
    """Catalogue entries that recorded something.

    A labelled gauge has a sample only once code set a child, and 0 is a real reading
    (an idle route, an empty queue). Everything else needs a non-zero sample: a counter
    child made at start-up, or an unlabelled family, is exposed at 0 before anything happened.
    """
    found: set[str] = set()
    for name, _, value in samples:
        if name.endswith("_created"):
            continue  # a counter's creation time, not a count
        signal = catalogue.lookup_series(name)
        if signal is not None and ((signal.kind == "gauge" and signal.labels) or value > 0):
            found.add(signal.name)
    return found


def exposed(samples: Iterable[Sample]) -> set[str]:
    """Catalogue entries with any sample at all."""
    return {s.name for name, _, _ in samples if (s := catalogue.lookup_series(name)) is not None}


def value(samples: Iterable[Sample], name: str, **labels: str) -> float:
    return sum(v for n, found, v in samples if n == name and labels.items() <= found.items())


def sdk_emitted(group: str | None = None) -> set[str]:
    return {
        s.name
        for s in catalogue.ALL
        if s.emitter == "sdk" and s.emitted and (group is None or s.group == group)
    }


@pytest.fixture(scope="module")
def sentry() -> Iterator[SentryReceiver]:
    with SentryReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, sentry: SentryReceiver) -> list[Sample]:
    """Samples of the driven web process (tests/integration/catalogue_driver.py)."""
    out = tmp_path_factory.mktemp("catalogue") / "samples.json"
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith(("LIGHTKEEPER_", "OTEL_", "SENTRY_"))
    }
    with services.temporary_database() as url:
        env = {
            **inherited,
            "PG_URL": url,
            "CORE_PG_URL": url,
            "CORE_REDIS_URL": f"redis://{services.REDIS_HOST}:{services.REDIS_PORT}/0",
            "LK_CATALOGUE_OUT": str(out),
            "LIGHTKEEPER_OTLP_ENDPOINT": f"http://127.0.0.1:{services.closed_port()}",
            "LIGHTKEEPER_OTLP_TIMEOUT_SECONDS": "1",
            "LIGHTKEEPER_SENTRY_DSN": sentry.dsn,
            "LIGHTKEEPER_SENTRY_TIMEOUT_SECONDS": "2",
            "LIGHTKEEPER_SENTRY_EVENTS_PER_FINGERPRINT_PER_MINUTE": "1",
            "LIGHTKEEPER_LOG_INFO_SAMPLE_RATE": "0.5",
        }
        result = subprocess.run(
            [sys.executable, "-m", "tests.integration.catalogue_driver"],
            cwd=services.ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=DRIVER_TIMEOUT,
        )
    assert result.returncode == 0, result.stderr[-4000:]
    return [(name, labels, float(v)) for name, labels, v in json.loads(out.read_text())]


@pytest.fixture(scope="module")
def celery(worker: Worker) -> list[Sample]:  # noqa: F811
    """Samples of the real worker once it ran a task of each outcome."""
    app = worker.app
    succeeded = [
        app.send_task("lk.add", args=[2, 3]),
        app.send_task("lk.flaky"),  # retried once, then succeeds
        app.send_task("lk.soft_caught"),  # overruns its soft time limit and catches it
    ]
    failed = app.send_task("lk.fail", args=["not-a-secret"])
    for result in [*succeeded, failed]:
        result.get(timeout=30, propagate=False)
    assert all(r.successful() for r in succeeded), [r.state for r in succeeded]
    assert failed.failed(), failed.state

    # Task metrics land a moment after the result; the sampler runs every 0.5 s.
    wanted = sdk_emitted("celery")
    deadline = time.monotonic() + CELERY_METRICS_TIMEOUT
    while True:
        samples = [(name, dict(labels), v) for (name, labels), v in worker.metrics().items()]
        if wanted <= produced(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


def test_every_sdk_entry_is_produced_by_a_real_process(web: list[Sample], celery: list[Sample]) -> None:
    missing = sdk_emitted() - produced(web) - produced(celery)
    assert not missing, f"catalogue says the SDK emits {sorted(missing)}, but nothing produced them"


def test_planned_entries_are_not_emitted_yet(web: list[Sample], celery: list[Sample]) -> None:
    planned = {s.name for s in catalogue.ALL if not s.emitted}
    found = exposed([*web, *celery])
    assert not planned & found, f"{sorted(planned & found)} are emitted now: drop their `planned` marker"


def test_process_signals_come_from_the_paths_set_up_for_them(
    web: list[Sample], sentry: SentryReceiver
) -> None:
    # The closed OTLP port fails every span export; Sentry delivers the one event its
    # budget allows for the repeated /fail and holds the others back.
    assert value(web, catalogue.TELEMETRY_EXPORT_FAILURES.name, exporter="otlp") > 0
    assert value(web, catalogue.TELEMETRY_EXPORT_FAILURES.name, exporter="sentry") == 0
    sentry.wait(lambda: any("exception" in e for e in sentry.events), timeout=10)
    errors = [e["exception"]["values"][-1]["type"] for e in sentry.events if "exception" in e]
    assert errors == ["RuntimeError"], "the real sentry-sdk did not deliver exactly the budgeted event"
    suppressed = value(web, catalogue.ERROR_EVENTS_SUPPRESSED.name, exception_type="RuntimeError")
    assert suppressed == REPEATED_FAILURES
    assert value(web, catalogue.LOG_EVENTS_SAMPLED_OUT.name, level="info") > 0


def test_other_emitters_are_named_correctly(web: list[Sample]) -> None:
    by_emitter: dict[str, set[str]] = {}
    for signal in catalogue.ALL:
        by_emitter.setdefault(signal.emitter, set()).add(signal.name)
    found = exposed(web)
    # prometheus-client's default collectors share the registry the SDK exposes
    assert by_emitter["prometheus_client"] <= found
    # Prometheus' synthetic series and the server's never come from a service
    assert not (by_emitter["prometheus"] | by_emitter["server"]) & found
