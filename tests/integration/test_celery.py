"""Celery integration against a real worker process (prefork pool) on the real Redis.

Broker: Redis db 6, results: db 7, a queue name unique to this run. The worker runs
`tests.integration.celery_app` in multi-process metrics mode and serves its metrics on
a port given by environment; tests read them over HTTP like Prometheus would.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from kombu.exceptions import OperationalError
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

import lightkeeper
from lightkeeper.sdk import context, health
from lightkeeper.sdk.integrations.celery import (
    CeleryUnavailableError,
    celery_check,
    instrument_celery,
    sample_queues,
    uninstrument_celery,
)
from tests.support import services

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BROKER = f"redis://{services.REDIS_HOST}:{services.REDIS_PORT}/6"
BACKEND = f"redis://{services.REDIS_HOST}:{services.REDIS_PORT}/7"
SECRET = "tok_live_celery_4f9a8b7c6d5e"
WORKER_START_TIMEOUT = 60.0


@dataclass
class Worker:
    app: Celery
    queue: str
    metrics_port: int
    log: Path
    proc: subprocess.Popen[bytes]

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def value(self, name: str, **labels: str) -> float:
        return self.metrics().get((name, frozenset(labels.items())), 0.0)

    def wait_for(self, name: str, target: float, timeout: float = 15.0, **labels: str) -> float:
        """Poll the worker's /metrics until the sample reaches `target` (bounded)."""
        deadline = time.monotonic() + timeout
        found = self.value(name, **labels)
        while found < target and time.monotonic() < deadline:
            time.sleep(0.1)
            found = self.value(name, **labels)
        assert found >= target, f"{name}{labels} = {found}, expected {target}\n{self.log_tail()}"
        return found

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def log_tail(self) -> str:
        return self.log_text()[-3000:]

    def json_lines(self) -> list[dict[str, object]]:
        lines = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines


def client_app(broker: str = BROKER, queue: str | None = None, **conf: object) -> Celery:
    app = Celery(f"lk-test-client-{uuid.uuid4().hex[:6]}", broker=broker, backend=BACKEND)
    app.conf.update(task_default_queue=queue or "lk-unused", result_expires=600, **conf)
    instrument_celery(app, configure_logging=False, sample_interval=None)
    return app


def _purge(queue: str) -> None:
    conn = redis.Redis(host=services.REDIS_HOST, port=services.REDIS_PORT, db=6)
    try:
        conn.delete(
            queue,
            *(f"{queue}\x06\x16{p}" for p in range(1, 10)),
            f"_kombu.binding.{queue}",
            f"_kombu.binding_permanent.{queue}",
        )
    finally:
        conn.close()


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    queue = f"lk-test-{uuid.uuid4().hex[:10]}"
    port = services.free_port()
    workdir = tmp_path_factory.mktemp("celery-worker")
    log = workdir / "worker.log"
    env = {
        **os.environ,
        "LK_CELERY_BROKER": BROKER,
        "LK_CELERY_BACKEND": BACKEND,
        "LK_CELERY_QUEUE": queue,
        "LK_CELERY_METRICS_PORT": str(port),
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(services.ROOT), os.environ.get("PYTHONPATH", "")])),
    }
    env.pop("LIGHTKEEPER_MULTIPROCESS_DIR", None)
    command = services.celery_worker_command(queue)
    app = client_app(queue=queue)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(services.ROOT)
        )
        try:
            handle = Worker(app, queue, port, log, proc)
            _wait_until_ready(handle)
            yield handle
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            uninstrument_celery(app)
            _purge(queue)


def _wait_until_ready(handle: Worker) -> None:
    check = celery_check(handle.app, timeout=1.0)
    deadline = time.monotonic() + WORKER_START_TIMEOUT
    while True:
        if handle.proc.poll() is not None:
            raise RuntimeError(
                f"the Celery worker exited with {handle.proc.returncode}:\n{handle.log_tail()}"
            )
        try:
            check()
            handle.metrics()
            return
        except (CeleryUnavailableError, OSError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Celery worker was not ready in time:\n{handle.log_tail()}") from None
            time.sleep(0.2)


def deltas(worker: Worker, *series: tuple[str, dict[str, str]]) -> Callable[[], list[float]]:
    """Snapshot now; the returned function gives each series' change since."""
    start = [worker.value(name, **labels) for name, labels in series]

    def since() -> list[float]:
        return [worker.value(name, **labels) - s for (name, labels), s in zip(series, start, strict=True)]

    return since


def settle(since: Callable[[], list[float]], expected: list[float], timeout: float = 10.0) -> None:
    """Metrics are written by the worker a moment after the result: poll, bounded."""
    deadline = time.monotonic() + timeout
    while since() != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    assert since() == expected


def tasks(name: str, state: str) -> tuple[str, dict[str, str]]:
    return "celery_tasks_total", {"task": name, "state": state}


# --- success path, context and logs -------------------------------------------------------


def test_request_id_and_task_context_reach_the_worker_logs(worker: Worker) -> None:
    with context.scoped(request_id="req-celery-ctx-1"):
        result = worker.app.send_task("lk.context", args=["marker-ctx-1"])
    seen = result.get(timeout=30)
    assert seen == {"request_id": "req-celery-ctx-1", "task": "lk.context", "task_id": result.id}
    deadline = time.monotonic() + 10
    line: dict[str, object] | None = None
    while line is None and time.monotonic() < deadline:
        line = next((j for j in worker.json_lines() if j.get("event") == "inside task marker-ctx-1"), None)
        time.sleep(0.1)
    assert line is not None, worker.log_tail()
    assert line["request_id"] == "req-celery-ctx-1"
    assert line["task_id"] == result.id
    assert line["task"] == "lk.context"
    assert line["service"] == "celery-test-worker"
    assert line["level"] == "info"


def test_a_bad_request_id_header_is_replaced(worker: Worker) -> None:
    forged = "evil\r\nX-Injected: 1"
    result = worker.app.send_task("lk.context", args=["forged"], headers={"lightkeeper_request_id": forged})
    seen = result.get(timeout=30)
    assert seen["request_id"] != forged
    assert "\n" not in seen["request_id"] and len(seen["request_id"]) == 32


def test_task_without_a_request_has_no_request_id(worker: Worker) -> None:
    seen = worker.app.send_task("lk.context", args=["no-request"]).get(timeout=30)
    assert "request_id" not in seen
    assert seen["task"] == "lk.context"


def test_success_counts_duration_and_queue_wait(worker: Worker) -> None:
    since = deltas(
        worker,
        tasks("lk.add", "received"),
        tasks("lk.add", "started"),
        tasks("lk.add", "succeeded"),
        ("celery_task_duration_seconds_count", {"task": "lk.add"}),
        ("celery_task_queue_wait_seconds_count", {"task": "lk.add"}),
    )
    assert worker.app.send_task("lk.add", args=[2, 3]).get(timeout=30) == 5
    settle(since, [1, 1, 1, 1, 1])


def test_queue_wait_starts_at_the_eta_for_delayed_tasks(worker: Worker) -> None:
    wait_sum = ("celery_task_queue_wait_seconds_sum", {"task": "lk.add"})
    wait_count = ("celery_task_queue_wait_seconds_count", {"task": "lk.add"})
    since = deltas(worker, wait_sum, wait_count)
    started = time.monotonic()
    assert worker.app.send_task("lk.add", args=[1, 1], countdown=1.5).get(timeout=30) == 2
    assert time.monotonic() - started >= 1.4
    deadline = time.monotonic() + 10
    while since()[1] < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    waited, count = since()
    assert count == 1
    assert waited < 1.0  # the 1.5 s countdown is a schedule, not time spent queued


# --- failure paths --------------------------------------------------------------------------


def test_failure_is_counted_by_exception_type_without_leaking_arguments(worker: Worker) -> None:
    since = deltas(
        worker,
        tasks("lk.fail", "failed"),
        ("celery_task_failures_total", {"task": "lk.fail", "exception_type": "ValueError"}),
    )
    with pytest.raises(ValueError, match="on purpose"):
        worker.app.send_task("lk.fail", args=[SECRET]).get(timeout=30)
    settle(since, [1, 1])
    metrics_text = urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}/metrics", timeout=5).read()
    assert SECRET.encode() not in metrics_text
    assert SECRET not in worker.log_text()


def test_retry_is_counted(worker: Worker) -> None:
    since = deltas(
        worker,
        tasks("lk.flaky", "retried"),
        tasks("lk.flaky", "started"),
        tasks("lk.flaky", "succeeded"),
        tasks("lk.flaky", "failed"),
    )
    assert worker.app.send_task("lk.flaky").get(timeout=30) == "ok after 1 retry"
    settle(since, [1, 2, 1, 0])


def test_soft_time_limit_uncaught(worker: Worker) -> None:
    since = deltas(
        worker,
        ("celery_task_time_limit_hits_total", {"task": "lk.soft", "limit": "soft"}),
        ("celery_task_failures_total", {"task": "lk.soft", "exception_type": "SoftTimeLimitExceeded"}),
        tasks("lk.soft", "failed"),
    )
    with pytest.raises(SoftTimeLimitExceeded):
        worker.app.send_task("lk.soft").get(timeout=30)
    settle(since, [1, 1, 1])


def test_soft_time_limit_caught_by_the_task_still_counts(worker: Worker) -> None:
    since = deltas(
        worker,
        ("celery_task_time_limit_hits_total", {"task": "lk.soft_caught", "limit": "soft"}),
        tasks("lk.soft_caught", "succeeded"),
    )
    assert worker.app.send_task("lk.soft_caught").get(timeout=30) == "cleaned up"
    settle(since, [1, 1])


def test_hard_time_limit_counted_once(worker: Worker) -> None:
    since = deltas(
        worker,
        ("celery_task_time_limit_hits_total", {"task": "lk.hard", "limit": "hard"}),
        ("celery_task_failures_total", {"task": "lk.hard", "exception_type": "TimeLimitExceeded"}),
        tasks("lk.hard", "failed"),
    )
    with pytest.raises(TimeLimitExceeded):
        worker.app.send_task("lk.hard").get(timeout=30)
    settle(since, [1, 1, 1])
    time.sleep(1.0)  # Celery reports a hard limit twice; the second must not count
    assert since() == [1, 1, 1]


def test_unregistered_task_is_rejected_under_a_shared_label(worker: Worker) -> None:
    since = deltas(worker, tasks("other", "rejected"))
    worker.app.send_task("lk.no_such_task_" + uuid.uuid4().hex[:6])
    settle(since, [1], timeout=15)
    assert (
        "lk.no_such_task"
        not in urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}/metrics", timeout=5)
        .read()
        .decode()
    )


# --- sampling and readiness -----------------------------------------------------------------


def test_worker_samples_its_queue_and_the_workers(worker: Worker) -> None:
    worker.wait_for("celery_workers_up", 1)
    assert ("celery_queue_length", frozenset({("queue", worker.queue)})) in worker.metrics()


def test_queue_length_is_read_from_the_broker(worker: Worker) -> None:
    idle = worker.queue + "-idle"  # no worker consumes it
    try:
        for i in range(3):
            worker.app.send_task("lk.add", args=[i, i], queue=idle)
        assert sample_queues(worker.app, [idle, worker.queue + "-never-used"]) == {
            idle: 3,
            worker.queue + "-never-used": 0,
        }
        assert REGISTRY.get_sample_value("celery_queue_length", {"queue": idle}) == 3
    finally:
        _purge(idle)


def test_readiness_check_passes_quickly_with_a_worker(worker: Worker) -> None:
    check = celery_check(worker.app, timeout=2.0)
    assert check.__name__ == "celery"
    start = time.monotonic()
    assert check() is True
    assert time.monotonic() - start < 1.5  # returns on the first answer, not after the timeout


def test_readiness_fails_within_its_timeout_when_no_worker_answers(worker: Worker) -> None:
    # Same broker, another control exchange: no worker listens there.
    lonely = client_app(control_exchange=f"lk-nobody-{uuid.uuid4().hex[:6]}")
    try:
        start = time.monotonic()
        with pytest.raises(CeleryUnavailableError, match="no Celery worker answered"):
            celery_check(lonely, timeout=0.5)()
        assert time.monotonic() - start < 2.0
    finally:
        uninstrument_celery(lonely)


def test_broker_down_fails_fast_and_never_shows_the_password() -> None:
    port = services.closed_port()
    down = client_app(
        broker=f"redis://:{SECRET}@127.0.0.1:{port}/6",
        broker_connection_timeout=1,
        task_publish_retry_policy={
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.1,
            "interval_max": 0.2,
        },
    )
    try:
        start = time.monotonic()
        with pytest.raises(OperationalError) as published:
            down.send_task("lk.add", args=[1, 2])
        assert time.monotonic() - start < 5.0
        assert SECRET not in str(published.value)

        start = time.monotonic()
        with pytest.raises(CeleryUnavailableError) as checked:
            celery_check(down, timeout=1.0)()
        assert time.monotonic() - start < 2.5
        assert "Connection refused" in str(checked.value)
        assert SECRET not in str(checked.value)

        # Through the readiness endpoint's runner: reported as failing, redacted.
        checks = health.HealthChecks([celery_check(down, timeout=1.0)], timeout=3.0, cache_seconds=0)
        report = asyncio.run(checks.run())
        assert report.status == "fail"
        assert report.checks[0].name == "celery"
        assert SECRET not in json.dumps(report.as_dict())
    finally:
        uninstrument_celery(down)


def test_broker_that_never_answers_is_bounded_by_the_timeout() -> None:
    with services.silent_listener() as port:
        hung = client_app(broker=f"redis://127.0.0.1:{port}/6")
        try:
            start = time.monotonic()
            with pytest.raises(CeleryUnavailableError, match="timed out"):
                celery_check(hung, timeout=0.5)()
            assert time.monotonic() - start < 2.0
        finally:
            uninstrument_celery(hung)


# --- in-process (eager) execution -----------------------------------------------------------


def test_eager_tasks_keep_the_callers_request_id_and_count_once() -> None:
    app = Celery(f"lk-eager-{uuid.uuid4().hex[:6]}", broker="memory://", backend="cache+memory://")

    @app.task(name="lk.eager_context")
    def eager_context() -> dict[str, object]:
        return dict(context.current())

    lightkeeper.instrument_celery(app, configure_logging=False, sample_interval=None)
    lightkeeper.instrument_celery(app, configure_logging=False, sample_interval=None)
    labels = {"task": "lk.eager_context", "state": "succeeded"}
    before = REGISTRY.get_sample_value("celery_tasks_total", labels) or 0.0
    try:
        with context.scoped(request_id="req-eager-1") as outer:
            seen = eager_context.apply().get()
            assert context.current() is outer  # the caller's context is back afterwards
        assert seen["request_id"] == "req-eager-1"
        assert seen["task"] == "lk.eager_context"
        assert REGISTRY.get_sample_value("celery_tasks_total", labels) == before + 1
    finally:
        uninstrument_celery(app)


def test_missing_options_are_rejected() -> None:
    app = Celery("lk-options", broker="memory://")
    with pytest.raises(ValueError, match="sample_interval"):
        instrument_celery(app, sample_interval=0)
    with pytest.raises(ValueError, match="timeout"):
        celery_check(app, timeout=0)


def test_signals_are_connected_by_instrument_celery_and_a_worker_start_configures_the_process() -> None:
    # A fresh interpreter: signal receivers, the tracer provider and Sentry are process wide.
    script = """
import celery.signals as signals
from celery import Celery

import lightkeeper.sdk.integrations.celery as lk_celery
from lightkeeper.sdk import error_reporting, trace_provider
from lightkeeper.sdk.settings import load_settings

def receivers(signal):
    return [r for r in signal.receivers if "lightkeeper" in repr(r[0])]

assert not receivers(signals.worker_init) and not receivers(signals.task_prerun), "connected on import"
app = Celery("probe", broker="memory://")
settings = load_settings(service="worker", otlp_endpoint="http://127.0.0.1:9", sentry_dsn="http://k@127.0.0.1:9/1")
lk_celery.instrument_celery(app, settings=settings, sample_interval=None, configure_logging=False)
assert receivers(signals.worker_init) and receivers(signals.task_prerun), "not connected by instrument_celery"
assert trace_provider.active_provider() is None and not error_reporting.sentry_enabled()

class Worker:
    pass
worker = Worker()
worker.app = app
signals.worker_init.send(sender=worker)
provider = trace_provider.active_provider()
assert provider is not None, "the worker start did not configure tracing"
assert provider.resource.attributes["service.name"] == "worker"
assert error_reporting.sentry_enabled(), "the worker start did not configure Sentry"
print("OK")
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(services.ROOT),
        env={k: v for k, v in os.environ.items() if not k.startswith(("LIGHTKEEPER_", "OTEL_", "SENTRY_"))},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("OK")
