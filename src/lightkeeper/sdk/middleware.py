"""The pure ASGI middleware: request id, RED metrics, one access-log line.

It wraps the app's whole middleware stack (outside Starlette's
ServerErrorMiddleware), so it sees the 500 that Starlette renders for an unhandled
exception, stamps `X-Request-ID` on it, records it under the right route, and then
lets the exception go on to the server (and to `TestClient`), as Starlette's own
error middleware does: an app's test suite still sees its endpoint's exception.
Metrics and the log line are written when the last body chunk is handed to the
server: streaming responses are timed to their end, and background tasks that run
after the response are not.

This is the hot path (every request): no per-request regexes, label children
cached by (method, route, status), one ContextVar set, one log call.
"""

from __future__ import annotations

import logging
import sys
import time
from bisect import bisect_left as _bisect
from typing import Any

from lightkeeper import catalogue
from lightkeeper.catalogue import MAX_LABEL_VALUE_LENGTH
from lightkeeper.sdk import fastpath, multiprocess, request_id
from lightkeeper.sdk.context import Frame, _request_context, bind, request_bound
from lightkeeper.sdk.logs import access, emit, mark_logged, was_logged
from lightkeeper.sdk.metrics import before_collect, family
from lightkeeper.sdk.runtime import EXCLUDED, Runtime, seen_routes
from lightkeeper.sdk.write_behind import WriteBehind

_perf = time.perf_counter
_new_request_id = request_id.new_request_id
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
_INTERNAL_ERROR = b'{"detail":"Internal Server Error"}'
_CLOSE = (b"connection", b"close")
_exc_info = sys.exc_info
_fallback_log = logging.getLogger("lightkeeper")
_MAX_PATH = 2 * MAX_LABEL_VALUE_LENGTH


# Everything one (method, route, status) records, resolved once: the label children
# and their fast-path updaters. Shared by every instrumented app in the process (the
# families are process-wide too). Keys are bounded: method x route template x status.
class _Series:
    __slots__ = ("batchable", "count", "duration", "fast", "request_size", "response_size")

    def __init__(self, method: str, route: str, status: int) -> None:
        self.count = family(catalogue.HTTP_REQUESTS).labels(method, route, str(status))
        self.duration = family(catalogue.HTTP_REQUEST_DURATION).labels(method, route)
        self.request_size = family(catalogue.HTTP_REQUEST_SIZE).labels(route)
        self.response_size = family(catalogue.HTTP_RESPONSE_SIZE).labels(route)
        duration = fastpath.histogram_parts(self.duration)
        request_size = fastpath.histogram_parts(self.request_size)
        response_size = fastpath.histogram_parts(self.response_size)
        # One flat tuple the request path unpacks in a single step; None when
        # prometheus-client's internals are not the expected shape (public API then).
        self.fast: tuple[Any, ...] | None = None
        if duration and request_size and response_size:
            self.fast = (fastpath.counter_add(self.count), *duration, *request_size, *response_size)
        # Batched only where values live in this process's memory (a kill loses them
        # all anyway). With several workers they are files that outlive a killed
        # worker, and a scrape answered by another worker must see every request.
        self.batchable = multiprocess.active_directory() is None

    def observe(self, elapsed: float, exemplar: Any, received: int, sent: int) -> None:
        """The same updates through prometheus-client's public API (the slow path)."""
        self.count.inc()
        self.duration.observe(elapsed, exemplar)
        self.request_size.observe(received)
        self.response_size.observe(sent)


_series: dict[tuple[str, str, int], _Series] = {}


def _new_series(method: str, route: str, status: int) -> _Series:
    found = _series[(method, route, status)] = _Series(method, route, status)
    seen_routes.add((method, route))  # in progress: 0 from now on when idle
    return found


def _apply(batch: list[tuple[Any, float, int, int]]) -> None:
    """prometheus-client's counter and histogram updates, run over a batch of requests.

    `fastpath.observe()` inlined: here a call costs as much as the update. A zero
    adds nothing to a sum, and lands in the first bucket.
    """
    for fast, elapsed, received, sent in batch:
        count, d_sum, d_buckets, d_bounds, q_sum, q_buckets, q_bounds, r_sum, r_buckets, r_bounds = fast
        count(1.0)
        d_sum(elapsed)
        d_buckets[_bisect(d_bounds, elapsed)](1.0)
        if received:
            q_sum(received)
            q_buckets[_bisect(q_bounds, received)](1.0)
        else:
            q_buckets[0](1.0)
        if sent:
            r_sum(sent)
            r_buckets[_bisect(r_bounds, sent)](1.0)
        else:
            r_buckets[0](1.0)


# Request metrics are applied in batches, like the request line is written (see
# write_behind): the updates run back to back, warm, instead of one request's worth
# between two requests. Process-wide, as the metric families are; every read of the
# values applies what waits first (metrics.before_collect). Single-process mode only
# (see _Series.batchable).
_waiting = WriteBehind(_apply, 0.05, "metrics")
before_collect(_waiting.flush)


def _body_size(raw: bytes) -> int:
    """Content-Length as sent; malformed or negative counts as 0."""
    try:
        size = int(raw)
    except ValueError:
        return 0
    return size if size > 0 else 0


class LightkeeperMiddleware:
    """One instance per instrumented app; configuration lives in its Runtime."""

    __slots__ = ("app", "rt")

    def __init__(self, app: Any, runtime: Runtime) -> None:
        self.app = app
        self.rt = runtime
        if runtime.batched:  # process-wide, like the log configuration: the last call wins
            _waiting.interval = runtime.settings.flush_interval_ms / 1000

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rt = self.rt
        # One C-level pass over the headers; a repeated header keeps its last value.
        headers = dict(scope["headers"])
        raw_rid = headers.get(rt.request_id_header_lower)
        rid = _new_request_id() if raw_rid is None else request_id.accept_or_new(raw_rid)
        rid_pair = (rt.request_id_header_bytes, rid.encode())

        kind = rt.path_kinds.get(scope["path"])
        if kind is not None and kind != EXCLUDED:
            await rt.serve_special(kind, scope, send, rid_pair, receive)
            return
        tracked = kind is None

        token = _request_context.set(Frame(request_id=rid))
        start = _perf()
        inflight = rt.inflight
        key = id(scope)
        base_root = scope.get("root_path", "")
        if tracked:
            inflight[key] = (scope, base_root)
        tracing = rt.tracing  # lightkeeper.sdk.tracing: the request's server span, when on
        trace_span = tracing.start(scope, rid) if tracing is not None and tracked else None
        status = sent = 0
        first_chunk = 0.0
        finished = False

        def send_wrapper(message: dict[str, Any]) -> Any:
            # A plain function returning the server's awaitable: one coroutine frame
            # fewer per message than an `async def` wrapper.
            nonlocal status, sent, first_chunk, finished
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                # A copy: the app may send the same header list again (a cached response).
                message = {**message, "headers": [*message.get("headers", ()), rid_pair]}
                if status == 500 and _exc_info()[1] is not None:
                    # Sent while an exception is being handled: an error middleware's
                    # (or our) 500, re-raised next. The server closes the connection
                    # after a re-raise, so tell the client not to reuse it.
                    message["headers"].append(_CLOSE)
            elif kind == "http.response.body":
                body = message.get("body")
                if body:
                    sent += len(body)
                if message.get("more_body"):
                    if not first_chunk:
                        first_chunk = _perf()
                elif not finished:
                    finished = True
                    if tracked:
                        self._record(
                            scope, base_root, start, status, sent, first_chunk, headers, rid, trace_span
                        )
            return send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            if not was_logged(exc):  # an instrumented app mounted in another logs it once
                self._on_exception(exc, scope, base_root, tracked)
            if not status:
                # Not a Starlette app (no ServerErrorMiddleware rendered a 500): send
                # one, so the client gets the request id and the request counts as 500.
                try:
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
                except Exception:  # the client is gone: the app's exception is the news
                    _fallback_log.debug("could not send the 500", exc_info=True)
            raise
        finally:
            if tracked:
                inflight.pop(key, None)
                if not finished:
                    # The client went away or the app returned without finishing its
                    # response: still count the request (499, as nginx does).
                    finished = True
                    self._record(
                        scope, base_root, start, status or 499, sent, first_chunk, headers, rid, trace_span
                    )
            if trace_span is not None:
                trace_span.end()  # after _on_exception, so the span carries the exception
            _request_context.reset(token)

    def _record(
        self,
        scope: dict[str, Any],
        base_root: str,
        start: float,
        status: int,
        sent: int,
        first_chunk: float,
        headers: dict[bytes, bytes],
        rid: str,
        trace_span: Any,
    ) -> None:
        elapsed = _perf() - start
        rt = self.rt
        route = rt.resolver.template(scope, base_root)
        method = scope["method"]
        if method not in _KNOWN_METHODS:
            method = "OTHER"
        series = _series.get((method, route, status)) or _new_series(method, route, status)
        # The span is named after the route here; a sampled one gives the exemplar.
        exemplar = trace_span.response(method, route, status) if trace_span is not None else None
        raw_len = headers.get(b"content-length")
        received = _body_size(raw_len) if raw_len else 0
        fast = series.fast
        if fast is None or exemplar:
            series.observe(elapsed, exemplar, received, sent)
        elif rt.batched and series.batchable:
            _waiting.add((fast, elapsed, received, sent))
        else:
            _apply([(fast, elapsed, received, sent)])
        if first_chunk:
            rt.ttfb(method, route).observe(first_chunk - start)
        if rt.access_log:
            client = scope.get("client")
            access(
                method,
                route,
                status,
                scope["path"][:_MAX_PATH],
                int(elapsed * 1_000_000.0),  # whole microseconds
                client[0] if client else None,
                headers.get(b"user-agent"),
                rid,
            )

    def _on_exception(self, exc: Exception, scope: dict[str, Any], base_root: str, tracked: bool) -> None:
        """Count and log an unhandled exception exactly once; the caller re-raises it.

        The exception is marked as logged, so when the server logs it again (uvicorn's
        "Exception in ASGI application") that line does not repeat the traceback.
        """
        rt = self.rt
        mark_logged(exc)
        # The error line and the hooks (Sentry) describe the whole request: what a
        # sync endpoint bound in its pool thread, or a child task, counts too. The
        # frame this sets ends with the request's (the caller resets its token).
        bound = request_bound()
        if bound:
            bind(**bound)
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
