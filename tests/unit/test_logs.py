from __future__ import annotations

import io
import json
import logging

import structlog

from lightkeeper import catalogue
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
