from __future__ import annotations

import io
import json
import logging

import structlog

from lightkeeper import catalogue
from lightkeeper.sdk import redact
from lightkeeper.sdk.context import scoped
from lightkeeper.sdk.logs import configure_logging
from lightkeeper.sdk.settings import load_settings
from lightkeeper.testing import capture_metrics


def lines(buffer: io.BytesIO) -> list[dict]:
    return [json.loads(x) for x in buffer.getvalue().decode().splitlines() if x.strip()]


def test_structlog_and_stdlib_share_one_json_shape() -> None:
    out = io.BytesIO()
    configure_logging(load_settings(service="svc", environment="e", version="v"), stream=out)
    with scoped(request_id="rid-1"):
        structlog.get_logger().info("user_signup", plan="pro")
        logging.getLogger("app.billing").warning("card declined %s", "visa")
    got = lines(out)
    assert [x["event"] for x in got] == ["user_signup", "card declined visa"]
    for line in got:
        assert line["request_id"] == "rid-1" and line["service"] == "svc" and line["version"] == "v"
        assert line["timestamp"].endswith("Z") and "T" in line["timestamp"]
        assert "trace_id" in line and "span_id" in line
    assert got[1]["logger"] == "app.billing" and got[1]["level"] == "warning"


def test_noisy_libraries_are_quiet_and_the_level_applies() -> None:
    out = io.BytesIO()
    configure_logging(load_settings(log_level="INFO"), stream=out)
    logging.getLogger("httpx").info("HTTP Request: GET https://api.openai.com")
    logging.getLogger("openai").info("retrying")
    logging.getLogger("urllib3").warning("pool full")
    structlog.get_logger().debug("too detailed")
    assert [x["event"] for x in lines(out)] == ["pool full"]


def test_info_sampling_keeps_warnings_and_counts_what_it_drops() -> None:
    out = io.BytesIO()
    configure_logging(load_settings(log_info_sample_rate=0.1), stream=out)
    with capture_metrics() as delta:
        for i in range(2000):
            structlog.get_logger().info("tick", i=i)
        for i in range(50):
            structlog.get_logger().warning("careful", i=i)
    got = lines(out)
    infos = [x for x in got if x["event"] == "tick"]
    assert 100 < len(infos) < 320  # ~10 % of 2000
    assert len([x for x in got if x["event"] == "careful"]) == 50
    dropped = delta.value(catalogue.LOG_EVENTS_SAMPLED_OUT.name, level="info")
    assert dropped == 2000 - len(infos)
    configure_logging(load_settings(), stream=io.BytesIO())


def test_exceptions_are_rendered_with_a_redacted_traceback() -> None:
    out = io.BytesIO()
    configure_logging(load_settings(), stream=out)
    try:
        raise ValueError("cannot connect to postgresql://app:Hunter2-Secret@db:5432/prod")
    except ValueError:
        structlog.get_logger().exception("db_failed")
    line = lines(out)[0]
    assert "Traceback" in line["exception"] and "ValueError" in line["exception"]
    assert "Hunter2-Secret" not in out.getvalue().decode()


# ------------------------------------------------------------------ tracebacks

PASSWORD = "correct-horse-battery-9"


def connect(attempt: int) -> None:
    # The source line below is part of the traceback text: its secret must go too.
    dsn = f"postgresql://app:{PASSWORD}@db/prod"
    raise ConnectionError(f"attempt {attempt}: {dsn}")  # token=src-Tok3n-9f SHIP-778899


def log_failure(attempt: int) -> BaseException:
    try:
        connect(attempt)
    except ConnectionError as exc:
        structlog.get_logger().exception("db_failed", attempt=attempt)
        return exc
    raise AssertionError("connect() raised")


def test_every_failure_of_one_stack_has_its_own_complete_redacted_traceback_line() -> None:
    from lightkeeper.sdk.tracebacks import format_exception

    out = io.BytesIO()
    configure_logging(load_settings(), stream=out)
    raised = [log_failure(n) for n in range(4)]
    got = lines(out)
    assert [(x["event"], x["attempt"]) for x in got] == [("db_failed", n) for n in range(4)]
    for n, (line, exc) in enumerate(zip(got, raised, strict=True)):
        # The text the pipeline produced before it was built part by part: the whole
        # traceback, redacted as one text.
        assert line["exception"] == redact.redact_text(format_exception(exc))
        assert line["exception"].startswith("Traceback (most recent call last):\n")
        assert "in log_failure" in line["exception"] and "in connect" in line["exception"]
        assert line["exception"].endswith(
            f"ConnectionError: attempt {n}: postgresql://app:{redact.MASK}@db/prod"
        )
    written = out.getvalue().decode()
    assert PASSWORD not in written and "src-Tok3n-9f" not in written
    # The field keeps the place it had when the text was made before redaction.
    keys = list(got[0])
    assert keys[keys.index("level") + 1] == "exception"


def test_a_changed_redaction_applies_to_a_stack_seen_before() -> None:
    out = io.BytesIO()
    configure_logging(load_settings(), stream=out)
    log_failure(1)
    try:
        redact.configure(patterns=[r"SHIP-\d+"])  # a value only the stack's source line holds
        log_failure(2)
    finally:
        redact.configure()
    first, second = lines(out)
    assert "SHIP-778899" in first["exception"]
    assert "SHIP-778899" not in second["exception"] and "in connect" in second["exception"]


def test_a_service_pattern_cannot_mask_the_traceback_before_it_exists() -> None:
    out = io.BytesIO()
    configure_logging(load_settings(), stream=out)
    try:
        redact.configure(patterns=[r"<\w*>", r"\w+"])  # would match any placeholder text
        log_failure(3)
    finally:
        redact.configure()
    (line,) = lines(out)
    assert line["exception"] != redact.MASK and "ConnectionError" not in line["exception"]
    assert line["exception"].startswith(redact.MASK)  # the real text, masked by the service's rule


def test_the_traceback_is_no_field_the_redaction_could_skip_or_the_renderer_miss() -> None:
    # A stdlib record with exc_info goes through the same placeholder and text.
    out = io.BytesIO()
    configure_logging(load_settings(), stream=out)
    try:
        connect(5)
    except ConnectionError:
        logging.getLogger("app.db").exception("stdlib_failure")
    (line,) = lines(out)
    assert line["exception"].startswith("Traceback") and "attempt 5" in line["exception"]
    assert PASSWORD not in out.getvalue().decode()


def test_the_error_line_follows_its_access_line_and_earlier_buffered_lines() -> None:
    import asyncio

    import httpx
    from fastapi import FastAPI

    import lightkeeper
    from lightkeeper.sdk.logs import flush_access_lines

    app = FastAPI()

    @app.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/fail")
    async def fail() -> None:
        raise RuntimeError(f"password={PASSWORD}")

    lightkeeper.instrument(app, service="order")
    out = io.BytesIO()
    configure_logging(load_settings(service="order", flush_interval_ms=5000), stream=out)

    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return [(await client.get(path)).status_code for path in ("/ok", "/fail", "/ok", "/fail", "/ok")]

    try:
        assert asyncio.run(run()) == [200, 500, 200, 500, 200]
        flush_access_lines()
        got = lines(out)
    finally:
        configure_logging(load_settings(), stream=io.BytesIO())
    assert [(x["event"], x.get("route")) for x in got] == [
        ("http_request", "/ok"),
        ("http_request", "/fail"),
        ("unhandled_exception", "/fail"),
        ("http_request", "/ok"),
        ("http_request", "/fail"),
        ("unhandled_exception", "/fail"),
        ("http_request", "/ok"),
    ]
    errors = [x for x in got if x["event"] == "unhandled_exception"]
    assert len({x["request_id"] for x in errors}) == 2  # one line per failure, each its request's
    for error in errors:
        assert error["exception"].startswith("Traceback") and "in fail" in error["exception"]
        assert error["exception"].endswith(f"RuntimeError: password={redact.MASK}")
    assert PASSWORD not in out.getvalue().decode()
