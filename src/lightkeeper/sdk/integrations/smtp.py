"""Outgoing e-mail through smtplib (and aiosmtplib when installed) as a tracked dependency.

    import lightkeeper
    lightkeeper.instrument_smtp()     # every smtplib.SMTP / SMTP_SSL / aiosmtplib.SMTP

Records `dependency_calls_total{dependency="email", operation, outcome}` for the
three steps that fail in their own ways: `connect` (refused, unreachable, timed out),
`login` (credentials) and `send` (`sendmail`, which `send_message` goes through, so a
message is counted once). Addresses, subjects and bodies never reach a label: only the
SMTP reply code is read, to tell a refused recipient from a throttling server.
"""

from __future__ import annotations

import importlib.util
import inspect
import smtplib
import time
from typing import Any

from lightkeeper.sdk.dependencies import classify, record_call, track_dependency
from lightkeeper.sdk.integrations import patching

__all__ = ["instrument_smtp", "uninstrument_smtp"]

DEPENDENCY = "email"
# method -> operation label
_METHODS = {"connect": "connect", "login": "login", "sendmail": "send"}


def _aiosmtplib() -> Any:
    """aiosmtplib when installed (in a supported version), else None: it is optional."""
    if importlib.util.find_spec("aiosmtplib") is None:
        return None
    return patching.require(
        "aiosmtplib", integration="smtp", distribution="aiosmtplib", minimum="2.0", below="6", extra="smtp"
    )


def instrument_smtp(dependency: str = DEPENDENCY) -> None:
    """Record every SMTP connect, login and send of smtplib and aiosmtplib clients.

    Idempotent; `dependency` names the label value (default "email") for services that
    send through several providers and instrument each differently.
    """
    track_dependency(dependency, "send")  # a bad name fails here, not on the first e-mail
    targets: list[type] = [smtplib.SMTP]
    aiosmtplib = _aiosmtplib()
    if aiosmtplib is not None:
        targets.append(aiosmtplib.SMTP)
    for cls in targets:
        for method, operation in _METHODS.items():
            patching.patch_class(cls, method, _wrapper(dependency, operation))
    patching.instrumented("smtp", None)


def uninstrument_smtp() -> None:
    """Undo `instrument_smtp()`."""
    targets: list[type] = [smtplib.SMTP]
    aiosmtplib = _aiosmtplib()
    if aiosmtplib is not None:
        targets.append(aiosmtplib.SMTP)
    for cls in targets:
        for method in _METHODS:
            patching.unpatch_class(cls, method)
    patching.uninstrumented("smtp", None)


def _wrapper(dependency: str, operation: str) -> Any:
    def make(func: Any) -> Any:
        if inspect.iscoroutinefunction(func):

            async def recorded_async(self: Any, *args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    result = await func(self, *args, **kwargs)
                except Exception as exc:
                    record_call(dependency, operation, classify(exc), time.perf_counter() - start)
                    raise
                record_call(dependency, operation, "success", time.perf_counter() - start)
                return result

            return recorded_async

        def recorded(self: Any, *args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                result = func(self, *args, **kwargs)
            except Exception as exc:
                record_call(dependency, operation, classify(exc), time.perf_counter() - start)
                raise
            record_call(dependency, operation, "success", time.perf_counter() - start)
            return result

        return recorded

    return make
