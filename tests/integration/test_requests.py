"""`requests` integration against the same real local servers as the httpx tests."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from prometheus_client import REGISTRY, generate_latest

import lightkeeper
from lightkeeper.sdk import context
from lightkeeper.sdk.integrations.requests import instrument_requests, uninstrument_requests
from tests.integration.test_httpx import (  # the servers, shared as fixtures
    HOST,
    duration_count,
    failures,
    hang_up_server,  # noqa: F401
    requests_count,
    server,  # noqa: F401
)
from tests.support import services

pytestmark = pytest.mark.integration


@pytest.fixture
def instrumented() -> Iterator[None]:
    lightkeeper.instrument_requests()
    yield
    uninstrument_requests()


@pytest.mark.usefixtures("instrumented")
def test_requests_by_host_method_and_status(server: str) -> None:  # noqa: F811
    before = requests_count("200"), requests_count("404", "PUT"), duration_count()
    assert requests.get(f"{server}/ok", timeout=5).text == "ok"
    with requests.Session() as session:
        assert session.put(f"{server}/status/404", timeout=5).status_code == 404
    assert requests_count("200") == before[0] + 1
    assert requests_count("404", "PUT") == before[1] + 1
    assert duration_count() == before[2] + 2


@pytest.mark.usefixtures("instrumented")
def test_redirect_hops_are_counted_each(server: str) -> None:  # noqa: F811
    before = requests_count("302"), requests_count("200")
    assert requests.get(f"{server}/redirect", timeout=5).text == "ok"
    assert (requests_count("302"), requests_count("200")) == (before[0] + 1, before[1] + 1)


@pytest.mark.usefixtures("instrumented")
def test_request_id_goes_out_only_inside_a_request(server: str) -> None:  # noqa: F811
    with context.scoped(request_id="req-requests-1"):
        inside = requests.get(f"{server}/headers", timeout=5).json()
        kept = requests.get(f"{server}/headers", headers={"x-request-id": "caller"}, timeout=5).json()
    outside = requests.get(f"{server}/headers", timeout=5).json()
    assert inside["X-Request-ID"] == "req-requests-1"
    assert {k.lower(): v for k, v in kept.items()}["x-request-id"] == "caller"
    assert "X-Request-ID" not in outside


@pytest.mark.usefixtures("instrumented")
def test_refused_connection_is_a_connect_failure() -> None:
    port = services.closed_port()
    before = failures("connect"), duration_count()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{HOST}:{port}/", timeout=2)
    assert failures("connect") == before[0] + 1
    assert duration_count() == before[1]


@pytest.mark.usefixtures("instrumented")
def test_silent_server_is_a_timeout_failure() -> None:
    with services.silent_listener() as port:
        before = failures("timeout")
        start = time.monotonic()
        with pytest.raises(requests.Timeout):
            requests.get(f"http://{HOST}:{port}/", timeout=0.3)
        assert time.monotonic() - start < 2.0
    assert failures("timeout") == before + 1


@pytest.mark.usefixtures("instrumented")
def test_hang_up_without_response_is_a_protocol_failure(hang_up_server: int) -> None:  # noqa: F811
    before = failures("protocol")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{HOST}:{hang_up_server}/", timeout=2)
    assert failures("protocol") == before + 1


@pytest.mark.usefixtures("instrumented")
def test_urls_never_leak_into_labels(server: str) -> None:  # noqa: F811
    port = server.rsplit(":", 1)[1]
    before = requests_count("200")
    requests.get(f"http://svc-user:pa55w0rd-req@{HOST}:{port}/ok/acct_771?token=sk-live-req-999", timeout=5)
    assert requests_count("200") == before + 1
    exposition = generate_latest(REGISTRY).decode()
    for secret in ("pa55w0rd-req", "svc-user", "sk-live-req-999", "acct_771", "token="):
        assert secret not in exposition


def test_instrumenting_twice_counts_once_and_uninstrument_stops(server: str) -> None:  # noqa: F811
    instrument_requests()
    instrument_requests()
    try:
        before = requests_count("200")
        requests.get(f"{server}/ok", timeout=5)
        assert requests_count("200") == before + 1
    finally:
        uninstrument_requests()
    before = requests_count("200")
    requests.get(f"{server}/ok", timeout=5)
    assert requests_count("200") == before
