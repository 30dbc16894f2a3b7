"""A local HTTP receiver that records JSON bodies: the webhook, Slack, PagerDuty and Alertmanager sink."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int = 0, status: int = 200) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.status = status
        self.bodies: list[tuple[str, Any]] = []
        self.hits: list[tuple[str, float]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def received(self, path: str | None = None) -> list[Any]:
        with self.lock:
            return [body for p, body in self.bodies if path is None or p == path]

    def wait_for(
        self, predicate: Callable[[list[Any]], bool], path: str | None = None, timeout: float = 20
    ) -> list[Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            bodies = self.received(path)
            if predicate(bodies):
                return bodies
            time.sleep(0.05)
        raise AssertionError(f"receiver did not get the expected bodies in {timeout} s: {self.received()}")


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_GET(self) -> None:
        # probe target: every hit recorded with its time, so tests can count executions
        with self.server.lock:
            self.server.hits.append((self.path, time.time()))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"null")
        with self.server.lock:
            self.server.bodies.append((self.path, body))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def hanging_target() -> Iterator[str]:
    """host:port that accepts connections (the kernel backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"127.0.0.1:{sock.getsockname()[1]}"


@contextlib.contextmanager
def serve(port: int = 0, status: int = 200) -> Iterator[Receiver]:
    server = Receiver(port, status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    """A port nothing listens on right now (the receiver is started on it later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
