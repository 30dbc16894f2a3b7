"""S3 calls of boto3 / botocore clients as a tracked dependency, through botocore's events.

    import lightkeeper
    lightkeeper.instrument_boto3(boto3.Session())      # clients the session creates from now on
    lightkeeper.instrument_boto3(s3_client)           # or one client

botocore announces every operation (`before-call.s3.<Operation>`) and its end, with
the parsed response (`after-call`) or the exception that ended it (`after-call-error`:
no connection, a timeout), so every S3 operation is covered without patching a method,
retries included (one call, timed from the first attempt). Records
`dependency_calls_total{dependency="s3", operation="PutObject", outcome}`; buckets,
keys and bodies never reach a label. aiobotocore (aioboto3) emits the same events.
"""

from __future__ import annotations

import time
from typing import Any

from lightkeeper.sdk.dependencies import classify, record_call, track_dependency
from lightkeeper.sdk.integrations import patching

__all__ = ["instrument_boto3", "uninstrument_boto3"]

DEPENDENCY = "s3"
_SERVICE = "s3"
_START = "lightkeeper_started"
_ID = "lightkeeper-dependency"


class _AwsError(Exception):
    """The error botocore parsed from a response, classified like the ClientError it becomes."""

    def __init__(self, response: dict[str, Any]) -> None:
        super().__init__("aws error response")
        self.response = response


def _load() -> None:
    patching.require(
        "botocore", integration="s3", distribution="botocore", minimum="1.28", below="2", extra="s3"
    )


def _events(target: Any) -> Any:
    """The event emitter of a boto3 / botocore session or of a client."""
    meta = getattr(target, "meta", None)
    if meta is not None and hasattr(meta, "events"):
        return meta.events  # a client
    if hasattr(target, "events"):
        return target.events  # boto3.Session: its botocore session's emitter
    if hasattr(target, "get_component"):
        return target.get_component("event_emitter")  # botocore.session.Session
    raise TypeError(
        f"instrument_boto3 takes a boto3 / botocore session or client, not {type(target).__name__}"
    )


def instrument_boto3(session_or_client: Any, dependency: str = DEPENDENCY) -> None:
    """Record every S3 operation of a client, or of the clients a session creates afterwards.

    Idempotent. A session's clients copy its handlers when they are created, so
    instrument the session before creating clients (or instrument the client itself).
    """
    _load()
    track_dependency(dependency, "PutObject")  # a bad name fails here, not on the first call
    events = _events(session_or_client)

    def before(context: dict[str, Any], **_: Any) -> None:
        context[_START] = time.perf_counter()
        # before-call stops at the first handler returning something: return nothing.

    def after(context: dict[str, Any], model: Any, http_response: Any, parsed: Any, **_: Any) -> None:
        started = context.pop(_START, None)
        if started is None:
            return
        status = getattr(http_response, "status_code", 200)
        outcome = "success"
        if status >= 300 or (isinstance(parsed, dict) and "Error" in parsed):
            outcome = classify(_AwsError(parsed if isinstance(parsed, dict) else {}))
            if outcome == "other" and status >= 300:
                outcome = "client_error" if status < 500 else "server_error"
        record_call(dependency, model.name, outcome, time.perf_counter() - started)

    def after_error(context: dict[str, Any], exception: BaseException, event_name: str, **_: Any) -> None:
        started = context.pop(_START, None)
        if started is None:
            return
        operation = event_name.rsplit(".", 1)[-1]
        record_call(dependency, operation, classify(exception), time.perf_counter() - started)

    events.register(f"before-call.{_SERVICE}", before, unique_id=f"{_ID}-before")
    events.register(f"after-call.{_SERVICE}", after, unique_id=f"{_ID}-after")
    events.register(f"after-call-error.{_SERVICE}", after_error, unique_id=f"{_ID}-error")
    patching.instrumented("s3", session_or_client)


def uninstrument_boto3(session_or_client: Any) -> None:
    """Undo `instrument_boto3()` for the same session or client."""
    events = _events(session_or_client)
    events.unregister(f"before-call.{_SERVICE}", unique_id=f"{_ID}-before")
    events.unregister(f"after-call.{_SERVICE}", unique_id=f"{_ID}-after")
    events.unregister(f"after-call-error.{_SERVICE}", unique_id=f"{_ID}-error")
    patching.uninstrumented("s3", session_or_client)
