"""THE PRIVACY CONTRACT: secrets that enter a service never leave it through telemetry.

This test is the contract; keep it growing. Every new sink, integration or field that
could carry request data gets a case here: put a secret where a careless service would
leak it, and add the sink to `sinks()`.

It drives the example SaaS app (examples.saas_app, plus the routes of
tests/apps/privacy_app.py) under a real uvicorn, with a real Celery worker, real
PostgreSQL and Redis, a second service for outbound calls, and captures every sink:

* stdout (JSON logs) of the API, the downstream service and the Celery worker;
* every Sentry envelope, as received by a local HTTP server acting as the DSN host;
* every OTLP/HTTP export, raw protobuf and decoded (opentelemetry-proto);
* /metrics (Prometheus and OpenMetrics, with exemplars) and /health, /health/ready,
  /health/live of the services.

Secrets go into headers (Authorization bearer and basic, Cookie, X-Api-Key), query
strings, JSON bodies, exception messages, log fields, span attributes, Celery task
arguments, SQL parameters, a Redis value, an outbound URL and header, and a readiness
check's URL. None may appear in any sink, raw, URL-encoded, JSON-escaped or base64.
"""

from __future__ import annotations

import base64
import json
import random
import string
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest

from lightkeeper.sdk import redact
from tests.integration.test_trace_continuity import base_env, purge, start_worker, stop
from tests.support import services
from tests.support.receivers import OTLPReceiver, SentryReceiver

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_rng = random.Random(20261123)


def _rand(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


def _b64url(data: str) -> str:
    return base64.urlsafe_b64encode(data.encode()).rstrip(b"=").decode()


PASSWORD = f"Tr0ub4dor&3-{_rand(10)}"
_JWT_HEADER = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}))
_JWT_CLAIMS = _b64url(json.dumps({"sub": "user_" + _rand(8), "scope": "admin"}))
JWT = f"{_JWT_HEADER}.{_JWT_CLAIMS}.{_rand(43, string.ascii_letters + '-_')}"
OPENAI_KEY = f"sk-proj-{_rand(48)}"
STRIPE_KEY = f"sk_live_{_rand(24)}"
AWS_KEY = f"AKIA{_rand(16, string.ascii_uppercase + string.digits)}"
SESSION_COOKIE = _rand(32, string.ascii_lowercase + string.digits)
DB_PASSWORD = f"Dbpw-{_rand(14)}"
DSN = f"postgresql://billing:{DB_PASSWORD}@db.internal:5432/billing"
REDIS_PASSWORD = f"Rdpw-{_rand(14)}"
EMAIL = f"dana.{_rand(8, string.ascii_lowercase)}@example.org"
CARD = "4539" + _rand(12, string.digits)

# name -> the secret; `fragments` below also checks a random middle part, so a masker
# that kept a prefix or suffix would be caught too.
SECRETS: dict[str, str] = {
    "password": PASSWORD,
    "jwt": JWT,
    "openai_key": OPENAI_KEY,
    "stripe_key": STRIPE_KEY,
    "aws_key": AWS_KEY,
    "session_cookie": SESSION_COOKIE,
    "db_password": DB_PASSWORD,
    "redis_password": REDIS_PASSWORD,
    "email": EMAIL,
    "card": CARD,
}


def forms(secret: str) -> set[str]:
    """The ways a sink could carry `secret` without it being plainly visible."""
    found = {
        secret,
        quote_plus(secret),
        quote(secret, safe=""),
        json.dumps(secret)[1:-1],
        base64.b64encode(secret.encode()).decode().rstrip("="),
        base64.urlsafe_b64encode(secret.encode()).decode().rstrip("="),
    }
    middle = secret[len(secret) // 3 : len(secret) // 3 + 12]
    if len(middle) == 12:
        found.add(middle)
    return {f for f in found if len(f) >= 8}


BASIC = base64.b64encode(f"{EMAIL}:{PASSWORD}".encode()).decode()


@dataclass
class Sinks:
    texts: dict[str, bytes] = field(default_factory=dict)

    def add(self, name: str, data: bytes | str) -> None:
        self.texts[name] = data.encode() if isinstance(data, str) else data


@dataclass
class Stack:
    api: int
    api_log: Path
    downstream: int
    downstream_log: Path
    worker_log: Path
    worker_metrics: int
    otlp: OTLPReceiver
    sentry: SentryReceiver


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    queue = f"lk-privacy-{uuid.uuid4().hex[:10]}"
    workdir = tmp_path_factory.mktemp("privacy")
    worker_metrics = services.free_port()
    with services.temporary_database() as pg_url, OTLPReceiver() as otlp, SentryReceiver() as sentry:
        env = base_env(otlp, sentry, queue, pg_url)
        worker = start_worker(
            {
                **env,
                "LK_CELERY_METRICS_PORT": str(worker_metrics),
                "PROMETHEUS_MULTIPROC_DIR": str(workdir / "worker-metrics"),
            },
            queue,
            workdir / "worker.log",
        )
        try:
            with services.uvicorn_process(
                "tests.apps.traced_app:app", env={**env, "TRACED_SERVICE": "downstream"}
            ) as (down, down_log):
                api_env = {
                    **env,
                    "SAAS_DATABASE_URL": pg_url,
                    "SAAS_ENVIRONMENT": "test",
                    "SAAS_REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:{services.closed_port()}/8",
                    "TRACED_PG_URL": pg_url,
                    "TRACED_REDIS_URL": f"redis://{services.REDIS_HOST}:{services.REDIS_PORT}/8",
                    "TRACED_DOWNSTREAM": f"http://127.0.0.1:{down}",
                    "TRACED_CELERY": "1",
                }
                with services.uvicorn_process("tests.apps.privacy_app:app", env=api_env) as (api, api_log):
                    yield Stack(
                        api, api_log, down, down_log, workdir / "worker.log", worker_metrics, otlp, sentry
                    )
        finally:
            stop(worker)
            purge(queue)


def drive(stack: Stack) -> dict[str, httpx.Response]:
    """Send the secrets in through every door of the service."""
    base = f"http://127.0.0.1:{stack.api}"
    common = {"Cookie": f"session={SESSION_COOKIE}; theme=dark", "X-Api-Key": OPENAI_KEY}
    payload = {
        "title": "quarterly numbers",
        "api_key": OPENAI_KEY,
        "password": PASSWORD,
        "jwt": JWT,
        "aws_key": AWS_KEY,
        "dsn": DSN,
        "email": EMAIL,
        "card": CARD,
        "stripe": STRIPE_KEY,
    }
    with httpx.Client(base_url=base, timeout=20) as client:
        return {
            "login": client.post(
                "/api/auth/login",
                json={"email": EMAIL, "password": PASSWORD},
                headers={**common, "Authorization": f"Basic {BASIC}"},
            ),
            "orgs": client.get(
                f"/api/orgs?api_key={OPENAI_KEY}&token={JWT}&page=1",
                headers={**common, "Authorization": f"Bearer {JWT}"},
            ),
            "items": client.get(
                f"/t/items/3?password={quote_plus(PASSWORD)}&email={quote_plus(EMAIL)}", headers=common
            ),
            "notes": client.post(
                "/p/notes", json=payload, headers={**common, "Authorization": f"Bearer {JWT}"}
            ),
            "handled": client.post("/p/handled", json=payload, headers=common),
            "fail": client.get(f"/t/fail?session={SESSION_COOKIE}", headers=common),
        }


def collect(stack: Stack, responses: dict[str, httpx.Response]) -> Sinks:
    notes_id = responses["notes"].headers["x-request-id"]
    otlp, sentry = stack.otlp, stack.sentry
    # Wait for the slowest telemetry: the worker's spans and events, and the API's.
    otlp.wait_for_spans(lambda s: s["name"] == "run/lk.store_secret", count=2, timeout=30)
    otlp.wait_for_spans(lambda s: s["attributes"].get("lightkeeper.request_id") == notes_id, timeout=15)
    otlp.wait_for_spans(lambda s: s["resource"]["service.name"] == "downstream", timeout=15)
    sentry.wait(lambda: len(sentry.events) >= 4, 30)  # notes 500, handled, /t/fail, worker task failure
    time.sleep(1.5)  # let stragglers (transactions, client reports, log flushes) arrive
    sinks = Sinks()
    for name, port in (("api", stack.api), ("downstream", stack.downstream)):
        for path, accept in (
            ("/metrics", "text/plain"),
            ("/metrics", "application/openmetrics-text"),
            ("/health", "*/*"),
            ("/health/ready", "*/*"),
            ("/health/live", "*/*"),
        ):
            sinks.add(
                f"{name} {path} {accept}",
                httpx.get(f"http://127.0.0.1:{port}{path}", headers={"accept": accept}, timeout=10).content,
            )
    sinks.add(
        "worker /metrics", httpx.get(f"http://127.0.0.1:{stack.worker_metrics}/metrics", timeout=10).content
    )
    sinks.add("api stdout", stack.api_log.read_bytes())
    sinks.add("downstream stdout", stack.downstream_log.read_bytes())
    sinks.add("worker stdout", stack.worker_log.read_bytes())
    sinks.add("sentry envelopes", sentry.raw())
    sinks.add("sentry events (decoded)", json.dumps([sentry.events, sentry.transactions]))
    sinks.add("otlp exports (protobuf)", otlp.raw())
    sinks.add("otlp spans (decoded)", json.dumps(otlp.spans))
    for name, response in responses.items():  # what the client itself gets back
        sinks.add(f"response headers {name}", json.dumps(dict(response.headers)))
    return sinks


@pytest.fixture(scope="module")
def captured(stack: Stack) -> tuple[dict[str, httpx.Response], Sinks]:
    responses = drive(stack)
    return responses, collect(stack, responses)


def test_no_secret_reaches_any_sink(captured: tuple[dict[str, httpx.Response], Sinks]) -> None:
    _, sinks = captured
    leaks = []
    for sink, data in sinks.texts.items():
        for name, secret in SECRETS.items():
            for form in forms(secret):
                if form.encode() in data:
                    leaks.append(f"{name} ({form[:6]}...) in {sink}")
        if BASIC.encode() in data or BASIC.rstrip("=").encode() in data:
            leaks.append(f"basic auth credentials in {sink}")
    if leaks:  # where exactly, for the failure message
        for sink, data in sinks.texts.items():
            for name, secret in SECRETS.items():
                at = data.find(secret.encode())
                if at != -1:
                    leaks.append(f"{name} in {sink}: ...{data[max(0, at - 200) : at + 40]!r}")
    assert not leaks, "\n".join(leaks)


# The controls: each sink really received the telemetry of these requests, so the test
# above cannot pass because something was not captured.


def test_the_requests_did_what_they_were_meant_to(captured: tuple[dict[str, httpx.Response], Sinks]) -> None:
    responses, _ = captured
    assert responses["login"].status_code == 401
    assert responses["orgs"].status_code == 401
    assert responses["items"].status_code == 200
    assert responses["notes"].status_code == 500
    assert responses["handled"].json() == {"handled": True}
    assert responses["fail"].status_code == 500


def test_logs_carried_the_fields_masked(
    stack: Stack, captured: tuple[dict[str, httpx.Response], Sinks]
) -> None:
    responses, _ = captured
    lines = [json.loads(x) for x in stack.api_log.read_text().splitlines() if x.startswith("{")]
    note = next(x for x in lines if x["event"] == "note_received")
    assert note["api_key"] == note["password"] == note["card_number"] == redact.MASK
    assert note["request_id"] == responses["notes"].headers["x-request-id"] and note["trace_id"]
    failed = next(
        x
        for x in lines
        if x["event"] == "unhandled_exception"
        and x["request_id"] == responses["notes"].headers["x-request-id"]
    )
    assert "sync failed for" in failed["exception"] and "Traceback" in failed["exception"]
    worker = [json.loads(x) for x in stack.worker_log.read_text().splitlines() if x.startswith("{")]
    stored = [x for x in worker if x.get("event") == "note_stored"]
    assert len(stored) == 2 and all(x["api_key"] == redact.MASK for x in stored)


def test_spans_carried_the_attributes_masked(
    stack: Stack, captured: tuple[dict[str, httpx.Response], Sinks]
) -> None:
    responses, _ = captured
    notes_id = responses["notes"].headers["x-request-id"]
    # The downstream service got the same request id (propagated), so pick the API's span.
    (server,) = [
        s
        for s in stack.otlp.spans
        if s["attributes"].get("lightkeeper.request_id") == notes_id
        and s["resource"]["service.name"] == "saas-api"
    ]
    assert server["name"] == "POST /p/notes" and server["status"]["code"] == 2
    assert server["attributes"]["app.access_key"] == redact.MASK
    assert server["attributes"]["app.note"] == f"token={redact.MASK}"
    assert server["attributes"]["app.owner"] == f"note owned by {redact.MASK}"
    assert [e for e in server["events"] if e["name"] == "exception"]
    in_trace = [s for s in stack.otlp.spans if s["trace_id"] == server["trace_id"]]
    names = {s["name"] for s in in_trace}
    assert {"INSERT p_notes", "SET", "GET", "apply_async/lk.store_secret", "run/lk.store_secret"} <= names
    # The outbound call's URL (old or new semantic conventions, depending on the contrib).
    urls = [
        s["attributes"].get("url.full") or s["attributes"].get("http.url") for s in in_trace if s["kind"] == 3
    ]
    assert any(url and url.endswith(f"/items/1?api_key={redact.MASK}") for url in urls), urls


def test_sentry_received_the_errors_masked(
    stack: Stack, captured: tuple[dict[str, httpx.Response], Sinks]
) -> None:
    responses, _ = captured
    api = [e for e in stack.sentry.events if not e.get("tags", {}).get("celery_task_id")]
    by_request = {e.get("tags", {}).get("request_id"): e for e in api}
    notes = by_request[responses["notes"].headers["x-request-id"]]
    assert notes["transaction"] == "POST /p/notes"
    assert notes["request"]["headers"]["authorization"] == redact.MASK
    assert notes["request"]["headers"]["cookie"] == redact.MASK
    assert "data" not in notes["request"]
    assert notes["exception"]["values"][-1]["value"].startswith("sync failed for")
    handled = by_request[responses["handled"].headers["x-request-id"]]
    assert handled["contexts"]["lightkeeper"]["api_key"] == redact.MASK
    # The task queued by that request failed on the worker: same request id, its own event.
    (worker,) = [e for e in stack.sentry.events if e.get("tags", {}).get("celery_task_id")]
    assert worker["tags"]["request_id"] == responses["notes"].headers["x-request-id"]
    assert worker["extra"]["celery-job"]["args"] == redact.MASK


def test_health_reports_the_failing_check_without_its_url(
    stack: Stack, captured: tuple[dict[str, httpx.Response], Sinks]
) -> None:
    _, sinks = captured
    health = json.loads(sinks.texts["api /health */*"])
    assert any(check.get("status") == "fail" for check in health["checks"].values()), health
