"""The Celery app a real worker process imports in the Celery integration tests.

    celery -A tests.integration.celery_app worker -Q <queue> --pool prefork

Configured from the environment by the test that starts the worker: broker and
result backend (Redis dbs 6 and 7), a queue name unique to the test run, and the port
on which the worker serves its metrics. Tasks cover the paths the integration must
record: success, failure, retry, soft and hard time limits, and a task that reports
the lightkeeper context it ran in.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded

import lightkeeper
from lightkeeper.sdk import context
from lightkeeper.sdk.settings import Settings

BROKER_URL = os.environ.get("LK_CELERY_BROKER", "redis://127.0.0.1:6379/6")
BACKEND_URL = os.environ.get("LK_CELERY_BACKEND", "redis://127.0.0.1:6379/7")
QUEUE = os.environ.get("LK_CELERY_QUEUE", "lightkeeper-test")

app = Celery("lightkeeper_test", broker=BROKER_URL, backend=BACKEND_URL)
app.conf.update(
    task_default_queue=QUEUE,
    worker_prefetch_multiplier=1,
    result_expires=600,
    broker_connection_retry_on_startup=True,
    worker_send_task_events=False,
)

log = logging.getLogger("tests.celery_app")

lightkeeper.instrument_celery(
    app,
    settings=Settings(service="celery-test-worker", environment="test"),
    metrics_port=int(os.environ["LK_CELERY_METRICS_PORT"])
    if "LK_CELERY_METRICS_PORT" in os.environ
    else None,
    metrics_addr="127.0.0.1",
    sample_interval=0.5,
)


@app.task(name="lk.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="lk.context")
def report_context(marker: str) -> dict[str, Any]:
    """Logs one line (to check the worker's JSON logs) and returns the task's context."""
    log.info("inside task %s", marker)
    return dict(context.current())


@app.task(name="lk.fail")
def fail(token: str) -> None:
    # `token` is a secret in the tests: it must not show up in logs or metrics.
    raise ValueError("the task failed on purpose")


@app.task(name="lk.flaky", bind=True, max_retries=3, default_retry_delay=0)
def flaky(self: Any) -> str:
    if self.request.retries == 0:
        raise self.retry(countdown=0)
    return f"ok after {self.request.retries} retry"


@app.task(name="lk.soft", soft_time_limit=0.5)
def soft_limit() -> None:
    time.sleep(5)


@app.task(name="lk.soft_caught", soft_time_limit=0.5)
def soft_limit_caught() -> str:
    try:
        time.sleep(5)
    except SoftTimeLimitExceeded:
        return "cleaned up"
    return "never"


@app.task(name="lk.hard", time_limit=1)
def hard_limit() -> None:
    time.sleep(10)
