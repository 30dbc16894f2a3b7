"""The pre-rendered access line must say exactly what the general pipeline says."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import structlog

from lightkeeper.sdk import logs as lk_logging
from lightkeeper.sdk.context import bind, scoped
from lightkeeper.sdk.settings import load_settings
from lightkeeper.testing import capture_logs

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
CASES = [
    ("GET", "/items/{item_id}", 200, "/items/42", 1234, "127.0.0.1", "curl/8.0"),
    ("POST", "/api/items", 201, "/api/items", 12500, None, None),
    ("GET", "/reset/{token}", 500, f"/reset/{JWT}", 3000, "10.0.0.1", f"agent Bearer {JWT}"),
    ("DELETE", "<unmatched>", 404, "/wp-admin/?password=hunter2-secret", 200, "::1", "scanner"),
    ("GET", "/q", 200, '/q?a="quoted"\\back\u00e9\u2603', 7, "2001:db8::1", 'ag\u00e9nt "x" \\ \x7f'),
    ("PUT", "/z", 200, "/z", 0, "10.0.0.2", ""),
    ("GET", "/slow", 200, "/slow", 12_345_678_901, "10.0.0.3", "ua"),
]


RID = "0af7651916cd43dd8448eb211c80319c"  # an id as the middleware issues them


@pytest.fixture(autouse=True)
def _plain_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The fast line stays off for good in a process that used structlog's bind_contextvars
    or set up tracing (its trace-id processor): such processes need the general pipeline,
    by design. Another test in the same xdist worker may have done either; these tests
    compare the fast line itself, so they start without both and restore them after."""
    structlog.contextvars.clear_contextvars()
    monkeypatch.setattr(lk_logging, "_structlog_vars", {})
    monkeypatch.setattr(lk_logging, "_extra_processors", [])
    yield
    monkeypatch.undo()
    if lk_logging._configured_with is not None:  # the pipeline gets its processors back
        lk_logging.configure_logging(lk_logging._configured_with, force=True)


def lines(out: io.BytesIO) -> list[dict]:
    lk_logging.flush_access_lines()  # request lines wait in a short buffer
    return [json.loads(x) for x in out.getvalue().decode().splitlines() if x.strip()]


def without_time(line: dict) -> dict:
    return {k: v for k, v in line.items() if k != "timestamp"}


@pytest.mark.parametrize("case", CASES, ids=[c[3][:20] for c in CASES])
def test_fast_line_equals_the_general_pipeline(case: tuple) -> None:
    method, route, status, path, duration, client, agent = case
    out = io.BytesIO()
    lk_logging.configure_logging(load_settings(service="svc", environment="prod", version="2"), stream=out)
    rid = "rid-123"
    with scoped(request_id=rid):
        raw_agent = agent.encode("latin-1") if agent is not None else None
        general = lk_logging.emit
        if status < 500:  # the fast line must not fall back to the pipeline it is compared with
            lk_logging.emit = None  # type: ignore[assignment]
        try:
            lk_logging.access(method, route, status, path, duration, client, raw_agent, rid)
        finally:
            lk_logging.emit = general
        lk_logging.emit(
            "error" if status >= 500 else "info",
            {
                "event": "http_request",
                "method": method,
                "route": route,
                "path": path,
                "status_code": status,
                "duration_ms": duration / 1000,
                "client_ip": client,
                "user_agent": agent or None,
            },
        )
    fast, general = lines(out)
    assert without_time(fast) == without_time(general)
    assert fast["timestamp"].endswith("Z") and len(fast["timestamp"]) == len(general["timestamp"])
    assert JWT not in out.getvalue().decode() and "hunter2-secret" not in out.getvalue().decode()


def test_extra_request_context_and_captures_take_the_general_path() -> None:
    out = io.BytesIO()
    lk_logging.configure_logging(load_settings(), stream=out)
    with scoped(request_id=RID):
        bind(plan="pro", api_key="sk-proj-AbCdEf0123456789GhIjKlMnOpQrStUvWx")
        lk_logging.access("GET", "/x", 200, "/x", 1000, None, None, RID)
        with capture_logs() as captured:
            lk_logging.access("GET", "/y", 200, "/y", 1000, None, None, RID)
    (line,) = lines(out)
    assert line["plan"] == "pro" and line["api_key"] != "sk-proj-AbCdEf0123456789GhIjKlMnOpQrStUvWx"
    assert captured[0]["path"] == "/y" and captured[0]["request_id"] == RID


def test_the_log_level_applies_to_the_access_line() -> None:
    out = io.BytesIO()
    lk_logging.configure_logging(load_settings(log_level="WARNING"), stream=out)
    with scoped(request_id=RID):
        lk_logging.access("GET", "/ok", 200, "/ok", 1000, None, None, RID)
        lk_logging.access("GET", "/bad", 503, "/bad", 1000, None, None, RID)
    assert [line["path"] for line in lines(out)] == ["/bad"]
    lk_logging.configure_logging(load_settings(), stream=io.BytesIO())


def test_info_sampling_applies_to_the_fast_line_and_counts_what_it_drops() -> None:
    from lightkeeper import catalogue
    from lightkeeper.testing import capture_metrics

    out = io.BytesIO()
    lk_logging.configure_logging(load_settings(log_info_sample_rate=0.1), stream=out)
    with scoped(request_id=RID), capture_metrics() as delta:
        for _ in range(2000):
            lk_logging.access("GET", "/ok", 200, "/ok", 1000, None, None, RID)
        for _ in range(20):
            lk_logging.access("GET", "/bad", 500, "/bad", 1000, None, None, RID)
    # Other loggers share the stream (a background thread left by an earlier test in the
    # same worker may write a line here): count the access lines only.
    got = [line for line in lines(out) if "path" in line]
    kept = len([line for line in got if line["path"] == "/ok"])
    assert 100 < kept < 320
    assert len([line for line in got if line["path"] == "/bad"]) == 20  # errors are never sampled
    assert delta.value(catalogue.LOG_EVENTS_SAMPLED_OUT.name, level="info") == 2000 - kept
    lk_logging.configure_logging(load_settings(), stream=io.BytesIO())


def test_values_seen_before_are_redacted_the_second_time_too() -> None:
    """The fast line remembers clean values only: a secret is masked on every request."""
    out = io.BytesIO()
    lk_logging.configure_logging(load_settings(), stream=out)
    agent = f"bot Bearer {JWT}".encode()
    path = "/reset?password=hunter2-secret"
    with scoped(request_id="rid-4"):
        for _ in range(3):
            lk_logging.access("GET", "/reset", 200, path, 1000, "10.0.0.7", agent, "rid-4")
            lk_logging.access("GET", "/ok", 200, "/ok", 1000, "10.0.0.7", b"curl/8.0", "rid-4")
    got = lines(out)
    text = out.getvalue().decode()
    assert JWT not in text and "hunter2-secret" not in text
    assert len(got) == 6
    assert all(line["request_id"] == "rid-4" and line["client_ip"] == "10.0.0.7" for line in got)
    assert [line["user_agent"] for line in got[1::2]] == ["curl/8.0"] * 3


def test_a_request_id_rebound_by_the_app_is_redacted_like_any_value() -> None:
    out = io.BytesIO()
    lk_logging.configure_logging(load_settings(), stream=out)
    with scoped(request_id="rid-5"):
        bind(request_id=JWT)  # the app replaced the id with something secret-shaped
        lk_logging.access("GET", "/x", 200, "/x", 1000, None, None, "rid-5")
    (line,) = lines(out)
    assert JWT not in out.getvalue().decode() and line["request_id"] == "[REDACTED]"


def test_a_duration_that_is_not_whole_microseconds_still_gives_valid_json() -> None:
    out = io.BytesIO()
    lk_logging.configure_logging(load_settings(), stream=out)
    with scoped(request_id=RID):
        lk_logging.access("GET", "/f", 200, "/f", 1.5, None, None, RID)  # type: ignore[arg-type]
    (line,) = lines(out)
    assert line["duration_ms"] == 0.0015 and line["request_id"] == RID


def test_request_lines_wait_and_any_other_line_writes_them_first() -> None:
    import logging

    import structlog

    out = io.BytesIO()
    lk_logging.configure_logging(load_settings(flush_interval_ms=5000), stream=out)
    with scoped(request_id=RID):
        lk_logging.access("GET", "/a", 200, "/a", 1000, None, None, RID)
        assert out.getvalue() == b""  # waiting in the buffer
        structlog.get_logger().info("structlog_line")
        lk_logging.access("GET", "/b", 200, "/b", 1000, None, None, RID)
        logging.getLogger("app").warning("stdlib_line")
    got = [json.loads(x) for x in out.getvalue().decode().splitlines()]
    assert [(x["event"], x.get("path")) for x in got] == [
        ("http_request", "/a"),
        ("structlog_line", None),
        ("http_request", "/b"),
        ("stdlib_line", None),
    ]
    lk_logging.configure_logging(load_settings(), stream=io.BytesIO())


def test_reconfiguring_writes_the_waiting_lines_to_the_stream_they_were_meant_for() -> None:
    old, new = io.BytesIO(), io.BytesIO()
    lk_logging.configure_logging(load_settings(flush_interval_ms=5000), stream=old)
    with scoped(request_id=RID):
        lk_logging.access("GET", "/old", 200, "/old", 1000, None, None, RID)
    lk_logging.configure_logging(load_settings(flush_interval_ms=5000), stream=new)
    assert [line["path"] for line in lines(old)] == ["/old"]
    assert lines(new) == []


def test_the_buffered_line_keeps_the_time_the_request_ended() -> None:
    import datetime

    out = io.BytesIO()
    lk_logging.configure_logging(load_settings(flush_interval_ms=5000), stream=out)
    ended = datetime.datetime.now(datetime.UTC)
    with scoped(request_id=RID):
        lk_logging.access("GET", "/t", 200, "/t", 1000, None, None, RID)
    import time

    time.sleep(1.1)
    (line,) = lines(out)
    stamped = datetime.datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00"))
    assert abs((stamped - ended).total_seconds()) < 0.5
    lk_logging.configure_logging(load_settings(), stream=io.BytesIO())
