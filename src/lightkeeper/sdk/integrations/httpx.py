"""Outbound httpx calls: count, latency and failures by host; request id propagated.

    import lightkeeper
    lightkeeper.instrument_httpx()                 # every httpx client in the process
    lightkeeper.instrument_httpx(client)           # or one Client / AsyncClient

Recording happens at the transport, once per network round trip: a redirect to
another host is counted against that host, and the request id header is added to
the request actually sent. Duration runs to the response headers (a streamed body
is the caller's time, not the dependency's). Calls that get no response at all are
counted in `http_client_failures_total` by kind and are not in the latency
histogram, so a refused connection never looks like a fast success.

Labels carry the host only (no port, no userinfo, never the path or query string),
capped per process.

Spans and `traceparent` come from OpenTelemetry's httpx instrumentation, wired by
lightkeeper's tracing set-up through `patching.on_instrument("httpx", ...)`.
"""

from __future__ import annotations

import time
from typing import Any

from lightkeeper.sdk.context import current_request_id
from lightkeeper.sdk.integrations import _outbound, patching

__all__ = ["instrument_httpx", "uninstrument_httpx"]

# Marks a request already recorded by an outer instrumented transport (a client-level
# wrapper around a globally instrumented HTTPTransport), so it is counted once.
_SEEN = "lightkeeper.recorded"

_header: str = "X-Request-ID"
_failure_kinds: tuple[tuple[type[BaseException], str], ...] = ()


def _load() -> Any:
    return patching.require("httpx", integration="httpx", distribution="httpx", minimum="0.23", below="1.0")


def instrument_httpx(client: Any = None, *, request_id_header: str | None = None) -> None:
    """Record outbound metrics for one client, or for every client when `client` is None.

    Idempotent; calling it for a client while every client is instrumented (or the
    reverse) still records each call once.
    """
    global _header, _failure_kinds
    httpx = _load()
    if request_id_header is None:
        from lightkeeper.sdk.settings import current_settings

        request_id_header = current_settings().request_id_header
    _header = request_id_header
    _failure_kinds = (
        (httpx.TimeoutException, "timeout"),
        (httpx.ConnectError, "connect"),
        (httpx.ReadError, "read"),
        (httpx.WriteError, "write"),
        (httpx.ProtocolError, "protocol"),
    )
    if client is None:
        changed = patching.patch_class(httpx.HTTPTransport, "handle_request", _wrap_sync)
        changed |= patching.patch_class(httpx.AsyncHTTPTransport, "handle_async_request", _wrap_async)
    else:
        changed = False
        for transport in _transports(client):
            if isinstance(client, httpx.AsyncClient):
                changed |= patching.patch_instance(transport, "handle_async_request", _wrap_async)
            else:
                changed |= patching.patch_instance(transport, "handle_request", _wrap_sync)
    if changed:
        patching.instrumented("httpx", client)


def uninstrument_httpx(client: Any = None) -> None:
    """Undo `instrument_httpx` for the same target (None: the process-wide patch)."""
    httpx = _load()
    if client is None:
        patching.unpatch_class(httpx.HTTPTransport, "handle_request")
        patching.unpatch_class(httpx.AsyncHTTPTransport, "handle_async_request")
    else:
        for transport in _transports(client):
            patching.unpatch_instance(transport, "handle_request")
            patching.unpatch_instance(transport, "handle_async_request")
    patching.uninstrumented("httpx", client)


def _transports(client: Any) -> list[Any]:
    # httpx keeps the default transport and the per-pattern mounts (proxies, custom
    # routes) on the client; each one that sends requests gets the wrapper.
    found = [client._transport, *(t for t in client._mounts.values() if t is not None)]
    return list({id(t): t for t in found}.values())


def _before(request: Any) -> bool:
    # The id, not a flag: httpx hands the same extensions dict to a redirect's request.
    extensions = request.extensions
    if extensions.get(_SEEN) == id(request):
        return False
    extensions[_SEEN] = id(request)
    request_id = current_request_id()
    if request_id is not None and _header not in request.headers:
        request.headers[_header] = request_id
    return True


def _record(request: Any, status: int, elapsed: float) -> None:
    _outbound.record(request.url.raw_host, request.method, status, elapsed)


def _failed(request: Any, exc: BaseException) -> None:
    kind = next((name for cls, name in _failure_kinds if isinstance(exc, cls)), "other")
    _outbound.failed(request.url.raw_host, kind)


def _wrap_sync(handle_request: Any) -> Any:
    def handle_request_recorded(self: Any, request: Any) -> Any:
        if not _before(request):
            return handle_request(self, request)
        start = time.perf_counter()
        try:
            response = handle_request(self, request)
        except Exception as exc:
            _failed(request, exc)
            raise
        _record(request, response.status_code, time.perf_counter() - start)
        return response

    return handle_request_recorded


def _wrap_async(handle_async_request: Any) -> Any:
    async def handle_async_request_recorded(self: Any, request: Any) -> Any:
        if not _before(request):
            return await handle_async_request(self, request)
        start = time.perf_counter()
        try:
            response = await handle_async_request(self, request)
        except Exception as exc:
            _failed(request, exc)
            raise
        _record(request, response.status_code, time.perf_counter() - start)
        return response

    return handle_async_request_recorded
