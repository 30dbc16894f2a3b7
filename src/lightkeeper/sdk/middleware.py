"""The pure ASGI middleware: request id, RED metrics, one access-log line.

It wraps the app's whole middleware stack (outside Starlette's
ServerErrorMiddleware), so it sees the 500 that Starlette renders for an unhandled
exception, stamps `X-Request-ID` on it, and records it under the right route.
Metrics and the log line are written when the last body chunk is handed to the
server: streaming responses are timed to their end, and background tasks that run
after the response are not.

This is the hot path (every request): no per-request regexes, label children
cached by (method, route, status), one ContextVar set, one log call.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_left as _bisect
from typing import Any

from lightkeeper.sdk import catalogue, fastpath, request_id
from lightkeeper.sdk.catalogue import MAX_LABEL_VALUE_LENGTH
from lightkeeper.sdk.context import _request_context
from lightkeeper.sdk.logging import access, emit
from lightkeeper.sdk.metrics import family
from lightkeeper.sdk.runtime import Runtime

_perf = time.perf_counter
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
_INTERNAL_ERROR = b'{"detail":"Internal Server Error"}'
_fallback_log = logging.getLogger("lightkeeper")
_MAX_PATH = 2 * MAX_LABEL_VALUE_LENGTH


# Everything one (method, route, status) records, resolved once: the label children
# and their fast-path updaters. Shared by every instrumented app in the process (the
# families are process-wide too). Keys are bounded: method x route template x status.
class _Series:
    __slots__ = (
        "count",
        "duration",
        "duration_parts",
        "request_size",
        "request_size_parts",
        "response_size",
        "response_size_parts",
    )

    def __init__(self, method: str, route: str, status: int) -> None:
        self.count = fastpath.counter_add(family(catalogue.HTTP_REQUESTS).labels(method, route, str(status)))
        self.duration = family(catalogue.HTTP_REQUEST_DURATION).labels(method, route)
        self.duration_parts = fastpath.histogram_parts(self.duration)
        self.request_size = family(catalogue.HTTP_REQUEST_SIZE).labels(route)
        self.request_size_parts = fastpath.histogram_parts(self.request_size)
        self.response_size = family(catalogue.HTTP_RESPONSE_SIZE).labels(route)
        self.response_size_parts = fastpath.histogram_parts(self.response_size)


_series: dict[tuple[str, str, int], _Series] = {}


def _series_for(method: str, route: str, status: int) -> _Series:
    key = (method, route, status)
    found = _series.get(key)
    if found is None:
        found = _series[key] = _Series(method, route, status)
    return found


class LightkeeperMiddleware:
    """One instance per instrumented app; configuration lives in its Runtime."""

    __slots__ = ("app", "rt")

    def __init__(self, app: Any, runtime: Runtime) -> None:
        self.app = app
        self.rt = runtime

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rt = self.rt
        rid_name = rt.request_id_header_lower
        raw_rid = raw_len = user_agent = None
        for key, value in scope["headers"]:
            if key == rid_name:
                raw_rid = value
            elif key == b"content-length":
                raw_len = value
            elif key == b"user-agent":
                user_agent = value
        rid = request_id.accept_or_new(raw_rid)
        rid_pair = (rt.request_id_header_bytes, rid.encode())

        path = scope["path"]
        special = rt.special_paths.get(path)
        if special is not None:
            await rt.serve_special(special, scope, send, rid_pair)
            return

        token = _request_context.set({"request_id": rid})
        start = _perf()
        tracked = path not in rt.excluded_paths
        inflight = rt.inflight
        key = id(scope)
        base_root = scope.get("root_path", "")
        if tracked:
            inflight[key] = (scope, base_root)
        tracing = rt.tracing  # lightkeeper.sdk.tracing: the request's server span, when on
        trace_span = tracing.start(scope, rid) if tracing is not None and tracked else None
        # state: [status, bytes sent, first chunk time, finished]
        state: list[Any] = [0, 0, 0.0, False]

        def send_wrapper(message: dict[str, Any]) -> Any:
            # A plain function returning the server's awaitable: one coroutine frame
            # fewer per message than an `async def` wrapper.
            kind = message["type"]
            if kind == "http.response.start":
                state[0] = message["status"]
                message = message.copy()
                message["headers"] = [*message.get("headers", ()), rid_pair]
            elif kind == "http.response.body":
                state[1] += len(message.get("body", b""))
                if message.get("more_body", False):
                    if not state[2]:
                        state[2] = _perf()
                elif not state[3]:
                    state[3] = True
                    if tracked:
                        self._record(scope, base_root, start, state, raw_len, user_agent, trace_span)
            return send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            self._on_exception(exc, scope, base_root, tracked)
            if not state[0]:
                await send_wrapper(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(_INTERNAL_ERROR)).encode()),
                        ],
                    }
                )
                await send_wrapper({"type": "http.response.body", "body": _INTERNAL_ERROR})
        finally:
            if tracked:
                inflight.pop(key, None)
                if not state[3]:
                    # The client went away or the app returned without finishing its
                    # response: still count the request (499, as nginx does).
                    state[3] = True
                    if not state[0]:
                        state[0] = 499
                    self._record(scope, base_root, start, state, raw_len, user_agent, trace_span)
            if trace_span is not None:
                trace_span.end()  # after _on_exception, so the span carries the exception
            _request_context.reset(token)

    def _record(
        self,
        scope: dict[str, Any],
        base_root: str,
        start: float,
        state: list[Any],
        raw_len: bytes | None,
        user_agent: bytes | None,
        trace_span: Any = None,
    ) -> None:
        end = _perf()
        elapsed = end - start
        rt = self.rt
        route = rt.resolver.template(scope, base_root)
        method = scope["method"]
        if method not in _KNOWN_METHODS:
            method = "OTHER"
        status = state[0]
        series = _series_for(method, route, status)
        # The span is named after the route here; a sampled one gives the exemplar.
        exemplar = trace_span.response(method, route, status) if trace_span is not None else None
        series.count(1.0)
        # fastpath.observe() inlined: on this path a call costs as much as the update.
        parts = series.duration_parts
        if exemplar or parts is None:
            series.duration.observe(elapsed, exemplar)
        else:
            parts[0](elapsed)
            parts[1][_bisect(parts[2], elapsed)](1.0)
        size = 0
        if raw_len is not None:
            try:
                size = int(raw_len)
            except ValueError:
                size = 0
        parts = series.request_size_parts
        if parts is None:
            series.request_size.observe(size)
        else:
            parts[0](size)
            parts[1][_bisect(parts[2], size)](1.0)
        parts = series.response_size_parts
        if parts is None:
            series.response_size.observe(state[1])
        else:
            parts[0](state[1])
            parts[1][_bisect(parts[2], state[1])](1.0)
        if state[2]:
            rt.ttfb(method, route).observe(state[2] - start)
        if rt.access_log:
            client = scope.get("client")
            access(
                method,
                route,
                status,
                scope["path"][:_MAX_PATH],
                round(elapsed * 1000.0, 3),
                client[0] if client else None,
                user_agent[:256].decode("latin-1") if user_agent else None,
            )

    def _on_exception(self, exc: Exception, scope: dict[str, Any], base_root: str, tracked: bool) -> None:
        """Count and log an unhandled exception exactly once, then let the 500 stand.

        The exception is not re-raised: the response is already sent (Starlette's
        ServerErrorMiddleware rendered it) or is sent right after this, and a
        re-raise would only make the server log the same traceback a second time.
        """
        rt = self.rt
        route = rt.resolver.template(scope, base_root)
        exc_type = type(exc).__name__[:MAX_LABEL_VALUE_LENGTH]
        family(catalogue.HTTP_EXCEPTIONS).labels(route, exc_type).inc()
        for hook in rt.exception_hooks:
            try:
                hook(exc, scope, route)
            except Exception:  # reporting must not turn one error into two
                _fallback_log.debug("exception hook failed", exc_info=True)
        try:
            emit(
                "error",
                {"event": "unhandled_exception", "route": route, "exception_type": exc_type, "exc_info": exc},
            )
        except Exception:
            _fallback_log.exception("unhandled exception (and the JSON logger failed)")
