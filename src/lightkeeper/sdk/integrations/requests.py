"""Outbound `requests` calls: the same metrics as the httpx integration.

    import lightkeeper
    lightkeeper.instrument_requests()

`HTTPAdapter.send` is wrapped process-wide, which covers `requests.get(...)`,
every `Session` and adapters that subclass `HTTPAdapter` and call `super().send`.
Recording is per round trip (each redirect hop counts against its own host) and the
duration runs to the response headers: `Session` reads the body after the adapter
returns, and that time belongs to the caller. Calls that get no response are counted
as failures by kind (timeout, connect, read, protocol, other) and stay out of the
latency histogram.

Labels carry the host only: the URL is cut before the path, userinfo and port are
dropped, so neither credentials nor query strings can reach a label.
"""

from __future__ import annotations

import time
from typing import Any

from lightkeeper.sdk.context import current_request_id
from lightkeeper.sdk.integrations import _outbound, patching

__all__ = ["instrument_requests", "uninstrument_requests"]


_header: str = "X-Request-ID"
_classify: Any = None


def _load() -> Any:
    patching.require("requests", integration="requests", distribution="requests", minimum="2.25", below="3")
    import requests.adapters

    return requests


def instrument_requests(*, request_id_header: str | None = None) -> None:
    """Record outbound metrics for every `requests` call in the process (idempotent)."""
    global _header, _classify
    requests = _load()
    if request_id_header is None:
        from lightkeeper.sdk.settings import current_settings

        request_id_header = current_settings().request_id_header
    _header = request_id_header
    _classify = _classifier(requests)
    if patching.patch_class(requests.adapters.HTTPAdapter, "send", _wrap):
        patching.instrumented("requests", None)


def uninstrument_requests() -> None:
    requests = _load()
    patching.unpatch_class(requests.adapters.HTTPAdapter, "send")
    patching.uninstrumented("requests", None)


def _classifier(requests: Any) -> Any:
    exc = requests.exceptions
    import urllib3.exceptions

    def classify(error: BaseException) -> str:
        if isinstance(error, exc.Timeout):  # ConnectTimeout and ReadTimeout
            return "timeout"
        if isinstance(error, exc.ConnectionError):
            # requests wraps "connection aborted / server closed without a response"
            # (urllib3's ProtocolError) in ConnectionError too; httpx calls it a
            # protocol error, and so do we, so both integrations agree.
            cause = error.args[0] if error.args else None
            if isinstance(cause, urllib3.exceptions.ProtocolError):
                return "protocol"
            return "connect"
        if isinstance(error, exc.ChunkedEncodingError | exc.ContentDecodingError):
            return "read"
        return "other"

    return classify


def host_of(url: str) -> str:
    """The host of an absolute URL, without userinfo and port, by slicing.

    Cheaper than `urlsplit` and it never looks past the authority, so the path and
    query string are not even read.
    """
    rest = url.split("://", 1)[-1]
    for stop in "/?#":
        rest = rest.split(stop, 1)[0]
    host = rest.rpartition("@")[2]
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else ""
    return host.split(":", 1)[0]


def _record(request: Any, status: int, elapsed: float) -> None:
    _outbound.record(host_of(request.url), request.method or "", status, elapsed)


def _failed(request: Any, exc: BaseException) -> None:
    _outbound.failed(host_of(request.url), _classify(exc))


def _wrap(send: Any) -> Any:
    def send_recorded(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        request_id = current_request_id()
        if request_id is not None and _header not in request.headers:
            request.headers[_header] = request_id
        start = time.perf_counter()
        try:
            response = send(self, request, *args, **kwargs)
        except Exception as exc:
            _failed(request, exc)
            raise
        _record(request, response.status_code, time.perf_counter() - start)
        return response

    return send_recorded
