"""httpx integration against a real HTTP server on 127.0.0.1, a refused port, a silent
listener and a server that hangs up without answering."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from prometheus_client import REGISTRY, generate_latest

import lightkeeper
from lightkeeper.sdk import context
from lightkeeper.sdk.integrations.httpx import instrument_httpx, uninstrument_httpx
from tests.support import services

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/status/"):
            self._send(int(self.path.rsplit("/", 1)[1]), b"")
        elif self.path.startswith("/headers"):
            self._send(200, json.dumps(dict(self.headers.items())).encode())
        elif self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._send(200, b"ok")

    do_POST = do_PUT = do_GET

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A real HTTP/1.1 server in a thread; yields its base URL."""
    srv = ThreadingHTTPServer((HOST, 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://{HOST}:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def hang_up_server() -> Iterator[int]:
    """Accepts, reads the request, closes without a byte of response."""
    srv = socket.socket()
    srv.bind((HOST, 0))
    srv.listen(16)
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            conn.settimeout(1)
            with contextlib.suppress(OSError):
                conn.recv(65536)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(srv.getsockname()[1])
    stop.set()
    thread.join(timeout=2)
    srv.close()


def requests_count(status: str, method: str = "GET", host: str = HOST) -> float:
    return (
        REGISTRY.get_sample_value(
            "http_client_requests_total", {"host": host, "method": method, "status_code": status}
        )
        or 0.0
    )


def duration_count(host: str = HOST) -> float:
    return REGISTRY.get_sample_value("http_client_request_duration_seconds_count", {"host": host}) or 0.0


def failures(error_type: str, host: str = HOST) -> float:
    return (
        REGISTRY.get_sample_value("http_client_failures_total", {"host": host, "error_type": error_type})
        or 0.0
    )


@pytest.fixture
def all_clients() -> Iterator[None]:
    lightkeeper.instrument_httpx()
    yield
    uninstrument_httpx()


@pytest.mark.usefixtures("all_clients")
def test_sync_requests_by_host_method_and_status(server: str) -> None:
    before = requests_count("200"), requests_count("503", "POST"), duration_count()
    with httpx.Client(base_url=server) as client:
        assert client.get("/ok").text == "ok"
        assert client.post("/status/503").status_code == 503
    assert requests_count("200") == before[0] + 1
    assert requests_count("503", "POST") == before[1] + 1
    assert duration_count() == before[2] + 2


@pytest.mark.usefixtures("all_clients")
async def test_async_requests_are_recorded(server: str) -> None:
    before = requests_count("200")
    async with httpx.AsyncClient(base_url=server) as client:
        assert (await client.get("/ok")).status_code == 200
    assert requests_count("200") == before + 1


@pytest.mark.usefixtures("all_clients")
def test_each_redirect_hop_is_a_round_trip(server: str) -> None:
    before = requests_count("302"), requests_count("200")
    with httpx.Client(base_url=server, follow_redirects=True) as client:
        assert client.get("/redirect").text == "ok"
    assert (requests_count("302"), requests_count("200")) == (before[0] + 1, before[1] + 1)


@pytest.mark.usefixtures("all_clients")
def test_request_id_goes_out_only_inside_a_request(server: str) -> None:
    with httpx.Client(base_url=server) as client:
        with context.scoped(request_id="req-outbound-1"):
            inside = client.get("/headers").json()
            kept = client.get("/headers", headers={"X-Request-ID": "caller-chose"}).json()
        outside = client.get("/headers").json()
    assert inside["X-Request-ID"] == "req-outbound-1"
    assert kept["X-Request-ID"] == "caller-chose"
    assert "X-Request-ID" not in outside


async def test_request_id_header_name_is_configurable(server: str) -> None:
    instrument_httpx(request_id_header="X-Correlation-ID")
    try:
        async with httpx.AsyncClient(base_url=server) as client:
            with context.scoped(request_id="req-async-2"):
                echoed = (await client.get("/headers")).json()
    finally:
        uninstrument_httpx()
    assert echoed["X-Correlation-ID"] == "req-async-2"


@pytest.mark.usefixtures("all_clients")
def test_refused_connection_is_a_connect_failure() -> None:
    port = services.closed_port()
    before = failures("connect"), duration_count()
    with httpx.Client() as client, pytest.raises(httpx.ConnectError):
        client.get(f"http://{HOST}:{port}/")
    assert failures("connect") == before[0] + 1
    assert duration_count() == before[1]  # no response: not in the latency histogram


@pytest.mark.usefixtures("all_clients")
async def test_silent_server_is_a_timeout_failure() -> None:
    with services.silent_listener() as port:
        before = failures("timeout")
        start = time.monotonic()
        async with httpx.AsyncClient(timeout=0.3) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(f"http://{HOST}:{port}/")
        assert time.monotonic() - start < 2.0
    assert failures("timeout") == before + 1


@pytest.mark.usefixtures("all_clients")
def test_hang_up_without_response_is_a_protocol_failure(hang_up_server: int) -> None:
    before = failures("protocol")
    with httpx.Client(timeout=2) as client, pytest.raises(httpx.RemoteProtocolError):
        client.get(f"http://{HOST}:{hang_up_server}/")
    assert failures("protocol") == before + 1


@pytest.mark.usefixtures("all_clients")
def test_urls_never_leak_into_labels(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    secret_url = f"http://svc-user:pa55w0rd-xyz@{HOST}:{port}/ok/acct_991?api_key=sk-live-abc123&email=a@b.co"
    before = requests_count("200")
    with httpx.Client() as client:
        client.get(secret_url)
    assert requests_count("200") == before + 1
    exposition = generate_latest(REGISTRY).decode()
    for secret in ("pa55w0rd-xyz", "svc-user", "sk-live-abc123", "acct_991", "api_key", "a@b.co"):
        assert secret not in exposition


def test_one_client_only_and_never_twice(server: str) -> None:
    chosen = httpx.Client(base_url=server)
    other = httpx.Client(base_url=server)
    instrument_httpx(chosen)
    instrument_httpx(chosen)
    try:
        before = requests_count("200")
        chosen.get("/ok")
        other.get("/ok")
        assert requests_count("200") == before + 1
        instrument_httpx()  # now every client, the chosen one included: one count each
        before = requests_count("200")
        chosen.get("/ok")
        other.get("/ok")
        assert requests_count("200") == before + 2
    finally:
        uninstrument_httpx()
        uninstrument_httpx(chosen)
    before = requests_count("200")
    chosen.get("/ok")
    assert requests_count("200") == before
    chosen.close()
    other.close()


async def test_one_async_client_wrapping_a_custom_transport(server: str) -> None:
    # A user transport around the default one (retries, ...): counted once even when
    # the inner HTTPTransport is instrumented process-wide as well.
    class Wrapping(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.AsyncHTTPTransport()

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return await self.inner.handle_async_request(request)

    client = httpx.AsyncClient(base_url=server, transport=Wrapping())
    instrument_httpx(client)
    instrument_httpx()
    try:
        before = requests_count("200")
        await client.get("/ok")
        assert requests_count("200") == before + 1
    finally:
        uninstrument_httpx()
        uninstrument_httpx(client)
        await client.aclose()
