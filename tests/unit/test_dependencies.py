"""track_dependency: counts and times calls as `with`, `async with` and decorators; classifies failures."""

from __future__ import annotations

import asyncio
import errno
import smtplib
import time

import httpx
import pytest
from prometheus_client import REGISTRY

import lightkeeper
from lightkeeper import catalogue
from lightkeeper.sdk import dependencies
from lightkeeper.sdk.dependencies import classify

CALLS = catalogue.DEPENDENCY_CALLS.name
DURATION = catalogue.DEPENDENCY_DURATION.name


def _calls(dependency: str, operation: str, outcome: str) -> float:
    labels = {"dependency": dependency, "operation": operation, "outcome": outcome}
    return REGISTRY.get_sample_value(CALLS, labels) or 0.0


def _timed(dependency: str, operation: str) -> tuple[float, float]:
    labels = {"dependency": dependency, "operation": operation}
    count = REGISTRY.get_sample_value(f"{DURATION}_count", labels) or 0.0
    total = REGISTRY.get_sample_value(f"{DURATION}_sum", labels) or 0.0
    return count, total


def _status_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "https://api.example.test/v1/send")
    return httpx.HTTPStatusError("failed", request=request, response=httpx.Response(status, request=request))


def test_a_successful_block_is_counted_and_timed() -> None:
    before, before_sum = _calls("email", "send", "success"), _timed("email", "send")[1]
    with lightkeeper.track_dependency("email", "send"):
        time.sleep(0.02)
    assert _calls("email", "send", "success") - before == 1
    assert _timed("email", "send")[1] - before_sum >= 0.02


def test_a_failure_propagates_unchanged_and_is_classified() -> None:
    before = _calls("email", "send", "connection")
    error = ConnectionRefusedError(errno.ECONNREFUSED, "refused")
    with pytest.raises(ConnectionRefusedError) as raised, lightkeeper.track_dependency("email", "send"):
        raise error
    assert raised.value is error
    assert _calls("email", "send", "connection") - before == 1


async def test_async_with_and_async_decorator() -> None:
    @lightkeeper.track_dependency("payments", "charge")
    async def charge(amount: int) -> int:
        await asyncio.sleep(0)
        if amount < 0:
            raise _status_error(402)
        return amount

    before_ok, before_bad = (
        _calls("payments", "charge", "success"),
        _calls("payments", "charge", "client_error"),
    )
    assert await charge(5) == 5
    with pytest.raises(httpx.HTTPStatusError):
        await charge(-1)
    async with lightkeeper.track_dependency("payments", "charge"):
        await asyncio.sleep(0)

    assert _calls("payments", "charge", "success") - before_ok == 2
    assert _calls("payments", "charge", "client_error") - before_bad == 1
    assert charge.__name__ == "charge"


def test_sync_decorator_keeps_the_function_and_times_each_call() -> None:
    @lightkeeper.track_dependency("geo", "lookup")
    def lookup(ip: str) -> str:
        if ip == "bad":
            raise TimeoutError("slow")
        return "NL"

    count_before = _timed("geo", "lookup")[0]
    assert lookup("1.2.3.4") == "NL"
    with pytest.raises(TimeoutError):
        lookup("bad")
    assert _timed("geo", "lookup")[0] - count_before == 2  # failures are timed too
    assert _calls("geo", "lookup", "timeout") >= 1


async def test_a_call_cancelled_by_a_deadline_reads_as_a_timeout() -> None:
    @lightkeeper.track_dependency("search", "query")
    async def slow() -> None:
        await asyncio.sleep(5)

    before = _calls("search", "query", "timeout")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(slow(), 0.01)
    assert _calls("search", "query", "timeout") - before == 1


def test_an_interrupt_is_not_blamed_on_the_dependency() -> None:
    before = sum(_calls("email", "interrupted", o) for o in catalogue.DEPENDENCY_OUTCOMES)
    with pytest.raises(KeyboardInterrupt), lightkeeper.track_dependency("email", "interrupted"):
        raise KeyboardInterrupt
    assert sum(_calls("email", "interrupted", o) for o in catalogue.DEPENDENCY_OUTCOMES) == before


def test_generators_cannot_be_decorated() -> None:
    def pages() -> object:
        yield 1

    with pytest.raises(TypeError, match="generator"):
        lightkeeper.track_dependency("api", "list")(pages)


@pytest.mark.parametrize(
    ("dependency", "operation"), [("Email", "send"), ("email", "send to bob@example.com"), ("", "x")]
)
def test_names_that_look_like_data_are_refused(dependency: str, operation: str) -> None:
    with pytest.raises(ValueError, match="must be a short"):
        lightkeeper.track_dependency(dependency, operation)


def test_operations_beyond_the_cap_share_other(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dependencies, "MAX_PAIRS", len(dependencies._pairs))
    with lightkeeper.track_dependency("capped", "brand_new_operation"):
        pass
    assert _calls("capped", "other", "success") >= 1
    assert _calls("capped", "brand_new_operation", "success") == 0


class _AwsLike(Exception):
    def __init__(self, code: str, status: int) -> None:
        super().__init__(code)
        self.response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (TimeoutError(), "timeout"),
        (httpx.ConnectTimeout("slow"), "timeout"),
        (httpx.ConnectError("refused"), "connection"),
        (OSError(errno.ENETUNREACH, "unreachable"), "connection"),
        (PermissionError(), "auth"),
        (_status_error(401), "auth"),
        (_status_error(429), "throttled"),
        (_status_error(404), "client_error"),
        (_status_error(503), "server_error"),
        (_AwsLike("SlowDown", 503), "throttled"),
        (_AwsLike("AccessDenied", 403), "auth"),
        (_AwsLike("NoSuchKey", 404), "client_error"),
        (smtplib.SMTPAuthenticationError(535, b"bad credentials"), "auth"),
        (smtplib.SMTPServerDisconnected("gone"), "connection"),
        (smtplib.SMTPRecipientsRefused({"x@example.test": (550, b"no such user")}), "client_error"),
        (smtplib.SMTPDataError(451, b"try later"), "server_error"),
        (smtplib.SMTPSenderRefused(421, b"too many messages", "a@example.test"), "throttled"),
        (ValueError("bad input"), "other"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else v,
)
def test_exceptions_map_onto_the_bounded_outcomes(exc: BaseException, outcome: str) -> None:
    assert classify(exc) == outcome
    assert classify(exc) in catalogue.DEPENDENCY_OUTCOMES
