"""Calls to external dependencies: how many, how long, and how they failed.

    with lightkeeper.track_dependency("email", "send"):
        mailer.send(message)

    @lightkeeper.track_dependency("payments", "charge")
    async def charge(...): ...

Each call lands in `dependency_calls_total{dependency, operation, outcome}` and
`dependency_call_duration_seconds{dependency, operation}`. The outcome is `success` or
one of a fixed set of error classes (see `classify`), so an alert can tell an outage
(`connection`, `timeout`, `server_error`) from a caller's mistake (`client_error`)
without a label per exception class. The exception itself propagates unchanged.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import inspect
import re
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

from lightkeeper import catalogue
from lightkeeper.sdk.metrics import family

P = ParamSpec("P")
R = TypeVar("R")

_DEPENDENCY = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
_OPERATION = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,63}$")
# Distinct (dependency, operation) pairs per process; later newcomers share "other".
MAX_PAIRS = 512
OTHER = "other"

_THROTTLED_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
        "BandwidthLimitExceeded",
        "ProvisionedThroughputExceededException",
    }
)
_AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidToken",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "AuthFailure",
    }
)
_AUTH_CLASSES = ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError")
_CONNECTION_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.EPIPE,
    }
)


def classify(exc: BaseException) -> str:
    """Map an exception onto the bounded outcomes of `dependency_calls_total`.

    Reads what clients attach (an AWS error code, an HTTP status, an SMTP reply code)
    before the class hierarchy, because a 404 and a 503 often share one class.
    """
    code = _aws_error_code(exc)
    if code in _THROTTLED_CODES:
        return "throttled"
    if code in _AUTH_CODES:
        return "auth"
    names = [cls.__name__ for cls in type(exc).__mro__]
    if isinstance(exc, TimeoutError | asyncio.CancelledError) or any("Timeout" in n for n in names):
        # A cancelled call is nearly always an outer deadline (asyncio.timeout, wait_for).
        return "timeout"
    if type(exc).__module__.split(".")[0] in ("smtplib", "aiosmtplib"):
        return _classify_smtp(exc, names)
    status = _http_status(exc)
    if status is not None:
        return _classify_status(status)
    if _is_connection_error(exc, names):
        return "connection"
    if isinstance(exc, PermissionError) or any(n in _AUTH_CLASSES for n in names):
        return "auth"
    return OTHER


def _classify_status(status: int) -> str:
    if status in (401, 403, 407):
        return "auth"
    if status == 408:
        return "timeout"
    if status == 429:
        return "throttled"
    if 400 <= status < 500:
        return "client_error"
    if status >= 500:
        return "server_error"
    return OTHER


def _classify_smtp(exc: BaseException, names: list[str]) -> str:
    if any("Authentication" in n for n in names):
        return "auth"
    if any(n in ("SMTPServerDisconnected", "SMTPConnectError") for n in names):
        return "connection"
    code = _smtp_code(exc)
    if code is None:
        return "connection" if _is_connection_error(exc, names) else OTHER
    if code in (530, 534, 535):
        return "auth"
    if code == 421:  # "service not available": how mail servers say "slow down"
        return "throttled"
    if 400 <= code < 500:
        return "server_error"  # transient: the server could not take it now
    if 500 <= code < 600:
        return "client_error"  # permanent: this message or recipient is refused
    return OTHER


def _smtp_code(exc: BaseException) -> int | None:
    for attribute in ("smtp_code", "code"):
        value = getattr(exc, attribute, None)
        if isinstance(value, int):
            return value
    recipients = getattr(exc, "recipients", None)
    if isinstance(recipients, Mapping):  # smtplib: {address: (code, reply)}
        for reply in recipients.values():
            if isinstance(reply, tuple) and reply and isinstance(reply[0], int):
                return reply[0]
    elif isinstance(recipients, list):  # aiosmtplib: [SMTPRecipientRefused, ...]
        for refused in recipients:
            if isinstance(getattr(refused, "code", None), int):
                return cast(int, refused.code)
    return None


def _aws_error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        error = response.get("Error")
        if isinstance(error, Mapping) and isinstance(error.get("Code"), str):
            return cast(str, error["Code"])
    return None


def _http_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    candidates: list[Any] = [getattr(exc, "status_code", None), getattr(exc, "status", None)]
    if isinstance(response, Mapping):
        candidates.append(response.get("ResponseMetadata", {}).get("HTTPStatusCode"))
    elif response is not None:
        candidates.append(getattr(response, "status_code", None))
    for value in candidates:
        if isinstance(value, int) and 100 <= value < 600:
            return value
    return None


def _is_connection_error(exc: BaseException, names: list[str]) -> bool:
    if isinstance(exc, ConnectionError):
        return True
    if isinstance(exc, OSError) and (exc.errno in _CONNECTION_ERRNOS or type(exc).__name__ == "gaierror"):
        return True
    return any("Connection" in n or "Connect" in n for n in names)


class _Pair:
    """The metric children of one (dependency, operation), resolved once."""

    __slots__ = ("_outcomes", "dependency", "duration", "operation")

    def __init__(self, dependency: str, operation: str) -> None:
        self.dependency = dependency
        self.operation = operation
        self.duration = family(catalogue.DEPENDENCY_DURATION).labels(dependency, operation)
        self._outcomes: dict[str, Any] = {}

    def record(self, outcome: str, seconds: float) -> None:
        child = self._outcomes.get(outcome)
        if child is None:
            if outcome not in catalogue.DEPENDENCY_OUTCOMES:
                outcome = OTHER
            child = self._outcomes[outcome] = family(catalogue.DEPENDENCY_CALLS).labels(
                self.dependency, self.operation, outcome
            )
        child.inc()
        self.duration.observe(seconds)


_pairs: dict[tuple[str, str], _Pair] = {}
_pairs_lock = threading.Lock()


def _pair(dependency: str, operation: str) -> _Pair:
    found = _pairs.get((dependency, operation))
    if found is not None:
        return found
    if not isinstance(dependency, str) or not _DEPENDENCY.match(dependency):
        raise ValueError(f"dependency {dependency!r} must be a short lowercase name such as 'email'")
    if not isinstance(operation, str) or not _OPERATION.match(operation):
        raise ValueError(f"operation {operation!r} must be a short name such as 'send' or 'PutObject'")
    with _pairs_lock:
        found = _pairs.get((dependency, operation))
        if found is None:
            if len(_pairs) >= MAX_PAIRS:
                return _pairs.get((dependency, OTHER)) or _pairs.setdefault(
                    (dependency, OTHER), _Pair(dependency, OTHER)
                )
            found = _pairs[(dependency, operation)] = _Pair(dependency, operation)
    return found


def record_call(dependency: str, operation: str, outcome: str, seconds: float) -> None:
    """Record one finished call (for integrations that see start and end as events)."""
    _pair(dependency, operation).record(outcome, seconds)


class DependencyCall:
    """What `track_dependency()` returns: a context manager (sync and async) and a decorator."""

    __slots__ = ("_pair", "_starts")

    def __init__(self, dependency: str, operation: str) -> None:
        self._pair = _pair(dependency, operation)
        self._starts: list[float] = []

    def __enter__(self) -> DependencyCall:
        self._starts.append(time.perf_counter())
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._finish(self._starts.pop(), exc)

    async def __aenter__(self) -> DependencyCall:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def _finish(self, start: float, exc: BaseException | None) -> None:
        if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
            return  # the process or the caller stopped; the dependency did nothing wrong
        self._pair.record("success" if exc is None else classify(exc), time.perf_counter() - start)

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise TypeError(
                f"track_dependency cannot time the generator {func.__qualname__}: it returns before any "
                "work is done; use it as a context manager inside the generator"
            )
        if inspect.iscoroutinefunction(func):
            return cast(Callable[P, R], self._wrap_async(func))

        @functools.wraps(func)
        def tracked(*args: P.args, **kwargs: P.kwargs) -> R:
            start = time.perf_counter()
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                self._finish(start, exc)
                raise
            self._finish(start, None)
            return result

        return tracked

    def _wrap_async(self, func: Callable[P, Any]) -> Callable[P, Any]:
        @functools.wraps(func)
        async def tracked(*args: P.args, **kwargs: P.kwargs) -> Any:
            start = time.perf_counter()
            try:
                result = await func(*args, **kwargs)
            except BaseException as exc:
                self._finish(start, exc)
                raise
            self._finish(start, None)
            return result

        return tracked


def track_dependency(dependency: str, operation: str) -> DependencyCall:
    """Time and count calls to an external dependency, as `with`, `async with` or a decorator.

    `dependency` and `operation` are names chosen in code (e.g. "email", "send"); they
    become labels, so never put ids, hosts with tenants or URLs in them. Bad names raise
    ValueError at once, in every environment: they are programming errors.
    """
    return DependencyCall(dependency, operation)
