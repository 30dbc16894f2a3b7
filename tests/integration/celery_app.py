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


# --- tasks for the tracing, Sentry and privacy tests (tests/integration/test_trace_continuity.py,
# test_privacy_e2e.py). They need LK_CELERY_DATABASE_URL: a PostgreSQL URL without driver.

_engine: Any = None


def _database() -> Any:
    """An instrumented engine on LK_CELERY_DATABASE_URL, created on first use in the pool child."""
    global _engine
    if _engine is None:
        from sqlalchemy import create_engine

        url = os.environ["LK_CELERY_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
        _engine = create_engine(url, connect_args={"connect_timeout": 3})
        lightkeeper.instrument_sqlalchemy(_engine)
    return _engine


@app.task(name="lk.query")
def query(item_id: int) -> int:
    """Runs SQL on the worker: its span must join the trace of the request that queued it."""
    from sqlalchemy import text

    with _database().connect() as conn:
        found = int(conn.execute(text("SELECT CAST(:id AS integer)"), {"id": item_id}).scalar_one())
    log.info("task query done %s", found)
    return found


@app.task(name="lk.store_secret")
def store_secret(note: str, api_key: str, password: str) -> str:
    """Secrets as task arguments, SQL parameters and log fields: none may reach a sink."""
    import structlog
    from sqlalchemy import text

    with _database().begin() as conn:
        # Two pool children may run this at once: CREATE TABLE IF NOT EXISTS races in PostgreSQL.
        conn.execute(text("SELECT pg_advisory_xact_lock(424242)"))
        conn.execute(text("CREATE TABLE IF NOT EXISTS lk_notes (note text, api_key text, password text)"))
        conn.execute(
            text("INSERT INTO lk_notes (note, api_key, password) VALUES (:note, :api_key, :password)"),
            {"note": note, "api_key": api_key, "password": password},
        )
    structlog.get_logger("tests.celery_app").info(
        "note_stored", note=note, api_key=api_key, password=password
    )
    if note == "fail":
        raise PermissionError(f"upstream refused api_key={api_key}")
    return "stored"
