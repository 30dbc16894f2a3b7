"""Local stand-ins for the backends telemetry is sent to: an OTLP/HTTP traces endpoint
and a Sentry DSN host. Both are real HTTP servers (stdlib, one thread each) that
decode what the real SDK exporters send, so tests assert on the bytes that would
leave the machine.

    with OTLPReceiver() as otlp, SentryReceiver() as sentry:
        app = make_app(otlp_endpoint=otlp.endpoint, sentry_dsn=sentry.dsn)
        ...
        spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /items/{item_id}")

`mode` switches how the next requests are answered: "ok", "error" (HTTP 500),
"unavailable" (503), "hang" (accept, never answer until `release()` or close).
A refused connection is a port nothing listens on (`tests.support.services.closed_port`).
"""

from __future__ import annotations

import gzip
import json
import threading
import time
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["OTLPReceiver", "SentryReceiver", "decode_envelope"]


class _Server:
    """A threaded HTTP server whose handler calls `self.handle(path, headers, body)`."""

    def __init__(self, keep: bool = True) -> None:
        self.keep = keep  # False: answer and count only (benchmarks), nothing decoded or kept
        self.mode = "ok"
        self.requests = 0
        self.bytes_received = 0
        self.bodies: list[bytes] = []  # decompressed payloads, in arrival order
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                with outer._lock:
                    outer.requests += 1
                    outer.bytes_received += len(raw)
                mode = outer.mode
                if mode == "hang":
                    outer._release.wait()
                    self.close_connection = True
                    return
                if mode in ("error", "unavailable"):
                    self._answer(500 if mode == "error" else 503, b"{}")
                    return
                if outer.keep:
                    body = _decompress(raw, self.headers.get("Content-Encoding"))
                    outer._accept(self.path, dict(self.headers.items()), body)
                self._answer(200, outer.response_body)

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    response_body = b"{}"

    def _accept(self, path: str, headers: dict[str, str], body: bytes) -> None:
        with self._cond:
            self.bodies.append(body)
            self.on_body(path, headers, body)
            self._cond.notify_all()

    def on_body(self, path: str, headers: dict[str, str], body: bytes) -> None:
        raise NotImplementedError

    def release(self) -> None:
        """Let hung requests finish (they get no answer, the connection closes)."""
        self._release.set()

    def wait(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def raw(self) -> bytes:
        with self._lock:
            return b"\n".join(self.bodies)

    def __enter__(self) -> Any:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


def _decompress(raw: bytes, encoding: str | None) -> bytes:
    encoding = (encoding or "").lower()
    if encoding == "gzip":
        return gzip.decompress(raw)
    if encoding == "deflate":
        return zlib.decompress(raw)
    return raw


# ----------------------------------------------------------------------- OTLP


def _any_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def _attributes(items: Any) -> dict[str, Any]:
    return {kv.key: _any_value(kv.value) for kv in items}


class OTLPReceiver(_Server):
    """OTLP/HTTP (protobuf) traces endpoint; spans decoded with opentelemetry-proto."""

    def __init__(self, keep: bool = True) -> None:
        super().__init__(keep)
        self.spans: list[dict[str, Any]] = []

    @property
    def endpoint(self) -> str:
        """Base URL, as in OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends /v1/traces)."""
        return f"http://127.0.0.1:{self.port}"

    def on_body(self, path: str, headers: dict[str, str], body: bytes) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        {
                            "path": path,
                            "name": span.name,
                            "kind": span.kind,
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_span_id": span.parent_span_id.hex(),
                            "attributes": _attributes(span.attributes),
                            "events": [
                                {"name": e.name, "attributes": _attributes(e.attributes)} for e in span.events
                            ],
                            "status": {"code": span.status.code, "message": span.status.message},
                            "resource": resource,
                            "scope": scope_spans.scope.name,
                        }
                    )

    def wait_for_spans(
        self,
        predicate: Callable[[dict[str, Any]], bool] = lambda s: True,
        count: int = 1,
        timeout: float = 15.0,
    ) -> list[dict[str, Any]]:
        """The spans matching `predicate` once at least `count` arrived (or the timeout passed)."""
        self.wait(lambda: sum(1 for s in self.spans if predicate(s)) >= count, timeout)
        with self._lock:
            return [s for s in self.spans if predicate(s)]


# --------------------------------------------------------------------- Sentry


def decode_envelope(body: bytes) -> list[tuple[dict[str, Any], Any]]:
    """Sentry envelope -> [(item header, payload)]; JSON payloads are parsed."""
    lines = body.split(b"\n", 1)
    rest = lines[1] if len(lines) > 1 else b""
    items: list[tuple[dict[str, Any], Any]] = []
    while rest.strip():
        header_line, _, rest = rest.partition(b"\n")
        if not header_line.strip():
            continue
        header = json.loads(header_line)
        length = header.get("length")
        if length is not None:
            payload, rest = rest[:length], rest[length + 1 :]
        else:
            payload, _, rest = rest.partition(b"\n")
        try:
            items.append((header, json.loads(payload)))
        except ValueError:
            items.append((header, payload))
    return items


class SentryReceiver(_Server):
    """Acts as the Sentry host of a DSN: receives envelopes, keeps events and transactions."""

    def __init__(self, keep: bool = True) -> None:
        super().__init__(keep)
        self.events: list[dict[str, Any]] = []
        self.transactions: list[dict[str, Any]] = []
        self.items: list[tuple[dict[str, Any], Any]] = []

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.port}/1"

    def on_body(self, path: str, headers: dict[str, str], body: bytes) -> None:
        for header, payload in decode_envelope(body):
            self.items.append((header, payload))
            if header.get("type") == "event":
                self.events.append(payload)
            elif header.get("type") == "transaction":
                self.transactions.append(payload)

    def wait_for_events(self, count: int = 1, timeout: float = 15.0) -> list[dict[str, Any]]:
        self.wait(lambda: len(self.events) >= count, timeout)
        with self._lock:
            return list(self.events)
