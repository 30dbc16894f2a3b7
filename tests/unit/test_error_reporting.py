"""lightkeeper.sdk.error_reporting in-process: the per-fingerprint budget, event redaction, the
Sentry hooks and `capture_exception` without Sentry.

Sentry's real transport, exactly-once reporting and endpoint failures are covered in
tests/integration/test_sentry.py (a real sentry-sdk posting to a local receiver).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import lightkeeper
from lightkeeper.sdk import context, redact, tracebacks
from lightkeeper.sdk import error_reporting as errors
from lightkeeper.testing import capture_logs, capture_metrics

BEARER = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyXzQyIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
OPENAI_KEY = "sk-proj-Qw8vT2mLx9Rk4Zp7Hs1Nb6Yc3Jd5Fg0A"
AWS_KEY = "AKIAZ7Q4M2N8V5X1C3B6"
PASSWORD = "correct-horse-battery-9"


# ------------------------------------------------------------------ budget


def test_budget_lets_per_minute_events_through_then_holds_back(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(errors.time, "monotonic", lambda: now[0])
    budget = errors.FingerprintBudget(per_minute=3)
    assert [budget.take("a") for _ in range(5)] == [0, 0, 0, None, None]
    assert budget.take("b") == 0  # fingerprints are independent
    now[0] += 20.0  # a third of a minute refills one event
    assert budget.take("a") == 2  # ...and reports how many were held back meanwhile
    assert budget.take("a") is None


def test_budget_forgets_the_least_recent_fingerprint_beyond_its_bound() -> None:
    budget = errors.FingerprintBudget(per_minute=1, max_keys=2)
    assert budget.take("a") == 0 and budget.take("b") == 0
    assert budget.take("c") == 0  # "a" is forgotten...
    assert budget.take("a") == 0  # ...so it starts afresh
    assert len(budget._entries) == 2


def test_no_budget_sends_everything() -> None:
    budget = errors.FingerprintBudget(per_minute=None)
    assert all(budget.take("a") == 0 for _ in range(100))


def raise_at(line: int) -> BaseException:
    try:
        if line == 1:
            raise ValueError("first place")
        raise ValueError("second place")
    except ValueError as exc:
        return exc


def test_fingerprint_is_the_type_and_the_raising_line() -> None:
    assert errors.fingerprint(raise_at(1)) == errors.fingerprint(raise_at(1))
    assert errors.fingerprint(raise_at(1)) != errors.fingerprint(raise_at(2))
    assert errors.fingerprint(ValueError("never raised"))[0] == "ValueError"


# ------------------------------------------------------------------ redaction


def event_with_secrets() -> dict[str, Any]:
    return {
        "level": "error",
        "request": {
            "method": "POST",
            "url": "https://app:" + PASSWORD + "@api.example.com/v1/login?api_key=abc123def456",
            "query_string": "token=abc123def456&page=2",
            "headers": {
                "Authorization": BEARER,
                "Cookie": "session=s3ss10n",
                "X-Api-Key": OPENAI_KEY,
                "User-Agent": "curl/8",
            },
            "cookies": {"session": "s3ss10n"},
            "data": {"password": PASSWORD, "email": "alice@example.com"},
            "env": {"REMOTE_ADDR": "10.0.0.1"},
        },
        "exception": {
            "values": [
                {
                    "type": "ValueError",
                    "value": f"could not call the API with {OPENAI_KEY}",
                    "stacktrace": {
                        "frames": [
                            {
                                "function": "login",
                                "in_app": True,
                                "vars": {
                                    "password": f"'{PASSWORD}'",
                                    "headers": {"authorization": BEARER},
                                    "note": f"'aws {AWS_KEY}'",
                                    "count": "3",
                                },
                            }
                        ]
                    },
                }
            ]
        },
        "breadcrumbs": {"values": [{"message": f"POST /token Authorization: {BEARER}", "category": "httpx"}]},
        "extra": {"client_secret": "cl1ent-s3cret", "sys.argv": ["app", f"--api-key={OPENAI_KEY}"]},
        "contexts": {"db": {"dsn": f"postgresql://app:{PASSWORD}@db:5432/app"}},
        "user": {"id": "42", "password": PASSWORD},
        "modules": {"fastapi": "0.165.0"},
        "tags": {"route": "/v1/login"},
    }


def test_redact_event_masks_every_place_a_secret_reaches_a_sentry_event() -> None:
    original = event_with_secrets()
    clean = errors.redact_event(original)
    text = repr(clean)
    for secret in (PASSWORD, BEARER[7:], OPENAI_KEY, AWS_KEY, "s3ss10n", "abc123def456", "cl1ent-s3cret"):
        assert secret not in text, secret
    request = clean["request"]
    assert "data" not in request  # bodies are dropped, not masked
    assert request["cookies"] == redact.MASK
    assert request["headers"]["Authorization"] == redact.MASK
    assert request["headers"]["User-Agent"] == "curl/8"
    assert request["query_string"] == f"token={redact.MASK}&page=2"
    assert request["url"].startswith("https://app:" + redact.MASK + "@api.example.com/v1/login")
    frame_vars = clean["exception"]["values"][0]["stacktrace"]["frames"][0]["vars"]
    assert frame_vars["password"] == redact.MASK and frame_vars["count"] == "3"
    assert clean["exception"]["values"][0]["value"].startswith("could not call the API with")
    assert clean["user"] == {"id": "42", "password": redact.MASK}
    assert clean["modules"] is original["modules"]  # not walked
    assert original["request"]["data"]["password"] == PASSWORD  # the input is not modified


def test_log_breadcrumbs_lose_the_record_extras() -> None:
    # Celery logs "Task ... received" with the task's arguments in `extra`.
    crumb = {
        "type": "log",
        "category": "celery.worker.strategy",
        "message": "Task lk.x[1] received",
        "data": {"data": {"args": "['note', 'Tr0ub4dor&3-plain-password']"}},
    }
    cleaned = errors.before_breadcrumb(crumb, None)
    assert cleaned == {
        "type": "log",
        "category": "celery.worker.strategy",
        "message": "Task lk.x[1] received",
    }
    event = errors.redact_event({"breadcrumbs": {"values": [crumb]}})
    assert "Tr0ub4dor" not in repr(event)


def test_before_breadcrumb_drops_sql_parameters_and_masks() -> None:
    crumb = {
        "category": "query",
        "message": "SELECT * FROM users WHERE api_key = %(key)s",
        "data": {"db.params": {"key": "raw-api-key-value"}, "db.paramstyle": "pyformat"},
    }
    result = errors.before_breadcrumb(crumb, None)
    assert result is not None
    assert "db.params" not in result["data"]
    assert result["message"] == crumb["message"]  # placeholders are not secrets
    assert errors.before_breadcrumb({"message": f"Authorization: {BEARER}"}, None)["message"] == (  # type: ignore[index]
        f"Authorization: {redact.MASK}"
    )


@pytest.fixture
def sentry_state() -> Iterator[errors._Sentry]:
    saved = errors._sentry
    errors._sentry = errors._Sentry(("unit",), errors.FingerprintBudget(10), "app")
    try:
        yield errors._sentry
    finally:
        errors._sentry = saved


def failing_login(password: str) -> BaseException:
    api_token = OPENAI_KEY  # noqa: F841 - a local the event may show, masked
    attempts = 3  # noqa: F841
    try:
        raise PermissionError("login refused")
    except PermissionError as exc:
        return exc


@pytest.mark.usefixtures("sentry_state")
def test_before_send_tags_and_adds_the_application_frames_locals_masked() -> None:
    exc = failing_login(PASSWORD)
    from sentry_sdk.utils import event_from_exception

    event, hint = event_from_exception(
        exc,
        client_options={
            "include_local_variables": False,
            "include_source_context": False,
            "max_value_length": None,
            "add_full_stack": False,
        },
    )
    for frame in event["exception"]["values"][-1]["stacktrace"]["frames"]:
        frame["in_app"] = frame["function"] == "failing_login"
    token = context.start({"request_id": "req-123", "workspace_id": 7})
    try:
        sent = errors.before_send(event, hint)
    finally:
        context.end(token)
    assert sent is not None
    assert sent["tags"]["request_id"] == "req-123"
    assert sent["contexts"]["lightkeeper_request"] == {"workspace_id": 7}
    (frame,) = [f for f in sent["exception"]["values"][-1]["stacktrace"]["frames"] if f.get("vars")]
    assert frame["function"] == "failing_login"
    assert frame["vars"]["password"] == redact.MASK
    assert frame["vars"]["api_token"] == redact.MASK
    assert frame["vars"]["attempts"] == "3"
    assert "raise PermissionError" in frame["context_line"]
    assert PASSWORD not in repr(sent) and OPENAI_KEY not in repr(sent)


@pytest.mark.usefixtures("sentry_state")
def test_by_default_no_locals_but_the_application_frames_source_lines() -> None:
    errors._sentry.local_variables = "none"  # type: ignore[union-attr]
    exc = failing_login(PASSWORD)
    from sentry_sdk.utils import event_from_exception

    event, hint = event_from_exception(
        exc,
        client_options={
            "include_local_variables": False,
            "include_source_context": False,
            "max_value_length": None,
            "add_full_stack": False,
        },
    )
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    for frame in frames:
        frame["in_app"] = frame["function"] == "failing_login"
    sent = errors.before_send(event, hint)
    assert sent is not None
    (app_frame,) = [f for f in sent["exception"]["values"][-1]["stacktrace"]["frames"] if f["in_app"]]
    assert "vars" not in app_frame
    assert "raise PermissionError" in app_frame["context_line"] and len(app_frame["pre_context"]) == 5
    assert not [
        f
        for f in sent["exception"]["values"][-1]["stacktrace"]["frames"]
        if not f["in_app"] and "context_line" in f
    ]


# ------------------------------------------------------------------ without Sentry


def test_capture_exception_without_sentry_logs_once_with_redacted_context() -> None:
    saved = errors._sentry
    errors._sentry = None
    try:
        exc = raise_at(1)
        with capture_logs() as logs:
            lightkeeper.capture_exception(
                exc,
                workspace_id=7,
                api_key=OPENAI_KEY,
                note=f"retry with Authorization: {BEARER}",
                event="shadowed",
            )
    finally:
        errors._sentry = saved
    (line,) = [x for x in logs if x["event"] == "handled_exception"]
    assert line["level"] == "error"
    assert line["exception_type"] == "ValueError"
    assert line["workspace_id"] == 7
    assert line["api_key"] == redact.MASK
    assert BEARER[7:] not in line["note"]
    assert line["context_event"] == "shadowed"  # reserved names never overwrite the event
    assert "Traceback" in line["exception"] and "first place" in line["exception"]


def test_capture_exception_never_raises_into_error_handling(sentry_state: errors._Sentry) -> None:
    class Broken:
        def take(self, key: Any) -> int:
            raise RuntimeError("budget broke")

    sentry_state.budget = Broken()  # type: ignore[assignment]
    with capture_logs() as logs:
        lightkeeper.capture_exception(raise_at(2))
    assert [x["event"] for x in logs] == ["handled_exception"]


def test_an_exception_is_reported_once_even_if_seen_twice(sentry_state: errors._Sentry) -> None:
    exc = raise_at(1)
    sent: list[Any] = []
    import sentry_sdk

    original = sentry_sdk.capture_event
    sentry_sdk.capture_event = lambda event, hint=None, **kw: sent.append(event)  # type: ignore[assignment]
    try:
        assert errors.report(exc) is True
        assert errors.report(exc) is False  # e.g. captured by the handler, then re-raised
        errors.report_unhandled(exc, {"type": "http", "method": "GET", "headers": []}, "/x")
    finally:
        sentry_sdk.capture_event = original  # type: ignore[assignment]
    assert len(sent) == 1


def test_held_back_errors_are_counted(sentry_state: errors._Sentry) -> None:
    sentry_state.budget = errors.FingerprintBudget(per_minute=1)
    import sentry_sdk

    original = sentry_sdk.capture_event
    sentry_sdk.capture_event = lambda event, hint=None, **kw: None  # type: ignore[assignment]
    try:
        with capture_metrics() as delta:
            results = [errors.report(raise_at(1)) for _ in range(4)]
    finally:
        sentry_sdk.capture_event = original  # type: ignore[assignment]
    assert results == [True, False, False, False]
    assert delta.value("lightkeeper_error_events_suppressed_total", exception_type="ValueError") == 3


def test_request_info_from_an_asgi_scope() -> None:
    scope = {
        "type": "http",
        "method": "POST",
        "scheme": "https",
        "root_path": "/api",
        "path": "/login",
        "query_string": b"next=/home",
        "headers": [(b"host", b"example.com"), (b"authorization", b"x")],
        "server": ("10.0.0.1", 443),
    }
    info = errors.request_info(scope)
    assert info["url"] == "https://example.com/api/login"
    assert info["query_string"] == "next=/home"
    assert info["method"] == "POST"
    # Masking happens in before_send, with everything else.
    assert errors.redact_event({"request": info})["request"]["headers"]["authorization"] == redact.MASK


def test_format_exception_matches_the_standard_text_without_carets() -> None:
    import traceback

    def inner() -> None:
        raise KeyError("missing")

    try:
        try:
            inner()
        except KeyError as exc:
            raise RuntimeError("while loading") from exc
    except RuntimeError as exc:
        error = exc
    mine = tracebacks.format_exception(error)
    standard = "".join(traceback.format_exception(error))
    # Same lines once the stdlib's column markers (^^^^ / ~~~~) are taken out.
    without_carets = [
        line
        for line in standard.rstrip("\n").splitlines()
        if not line.strip() or set(line.strip()) - set("^~")
    ]
    assert mine.splitlines() == without_carets
    assert "The above exception was the direct cause" in mine
