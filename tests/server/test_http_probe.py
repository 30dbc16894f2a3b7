"""The http probe against real local servers: every assertion, the timeout, TLS and secrets."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import TypeAdapter

from lightkeeper.server.probes import ProbeResult, run_probe
from lightkeeper.spec.probes import Probe
from tests.server import targets
from tests.server.conftest import Pki
from tests.support.services import silent_listener

_PROBE: TypeAdapter[Probe] = TypeAdapter(Probe)


def http(url: str, **fields: Any) -> Probe:
    return _PROBE.validate_python({"name": "web", "type": "http", "target": url, **fields})


async def run(url: str, **fields: Any) -> ProbeResult:
    return await run_probe(http(url, **fields))


def base(server: targets.TargetServer, scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{server.port}"


async def test_healthy_target_is_up_with_latency(http_target: targets.TargetServer) -> None:
    result = await run(base(http_target) + "/healthy", body_contains="ok", max_latency_ms=2000)
    assert (result.status, result.ok, result.error) == ("up", True, None)
    assert result.latency_ms is not None and 0 < result.latency_ms < 2000
    assert result.checked_at.tzinfo is not None and result.checked_at.utcoffset().total_seconds() == 0


async def test_wrong_status_says_expected_and_got(http_target: targets.TargetServer) -> None:
    result = await run(base(http_target) + "/status/503", expected_status=[200])
    assert (result.status, result.ok) == ("down", False)
    assert result.error == "expected status 200, got 503"
    assert result.latency_ms is not None


async def test_default_status_range_and_explicit_range(http_target: targets.TargetServer) -> None:
    assert (await run(base(http_target) + "/status/503")).error == "expected status 200-399, got 503"
    assert (await run(base(http_target) + "/status/503", expected_status=["500-503"])).ok


async def test_wrong_body(http_target: targets.TargetServer) -> None:
    result = await run(base(http_target) + "/wrong-body", body_contains="ok")
    assert result.error == 'body does not contain "ok"'
    regex = await run(base(http_target) + "/wrong-body", body_regex=r"^all \w+$")
    assert regex.error == r"body does not match /^all \w+$/"
    assert (await run(base(http_target) + "/healthy", body_regex=r"^all \w+$")).ok


async def test_json_path_equals(http_target: targets.TargetServer) -> None:
    url = base(http_target) + "/json"
    assert (await run(url, json_path_equals={"$.checks[0].db": "ok"})).ok
    wrong = await run(url, json_path_equals={"$.status": "ok"})
    assert wrong.error == 'JSON path $.status is "degraded", expected "ok"'
    missing = await run(url, json_path_equals={"$.version": "1.2"})
    assert missing.error == 'JSON path $.version not found in the body, expected "1.2"'
    not_json = await run(base(http_target) + "/healthy", json_path_equals={"$.status": "ok"})
    assert not_json.error is not None and "body is not JSON" in not_json.error


async def test_header_present(http_target: targets.TargetServer) -> None:
    assert (await run(base(http_target) + "/with-header", header_present="X-Served-By")).ok
    result = await run(base(http_target) + "/healthy", header_present=["X-Served-By"])
    assert result.error == "header 'X-Served-By' missing from the response"


async def test_redirects_followed_or_not(http_target: targets.TargetServer) -> None:
    url = base(http_target) + "/redirect"
    assert (await run(url, body_contains="all ok")).ok
    result = await run(url, follow_redirects=False, expected_status=[200])
    assert result.error == "expected status 200, got 302"
    assert (await run(url, follow_redirects=False, expected_status=[302])).ok


async def test_slow_target_over_latency_limit(http_target: targets.TargetServer) -> None:
    result = await run(base(http_target) + "/slow", max_latency_ms=300)
    assert result.status == "down"
    assert result.error is not None and result.error.startswith("latency ")
    assert result.error.endswith(" ms over the 300 ms limit")
    assert result.latency_ms is not None and result.latency_ms >= 500


async def test_hanging_target_times_out_on_time() -> None:
    with silent_listener() as port:
        started = time.monotonic()
        result = await run(f"http://127.0.0.1:{port}/", timeout_seconds=1.5)
        elapsed = time.monotonic() - started
    assert (result.status, result.error, result.latency_ms) == ("down", "timed out after 1.5 s", None)
    assert 1.4 <= elapsed < 4.0


async def test_flapping_target_alternates(http_target: targets.TargetServer) -> None:
    results = [await run(base(http_target) + "/flap") for _ in range(4)]
    assert [r.status for r in results] == ["up", "down", "up", "down"]
    assert results[1].error == "expected status 200-399, got 500"


async def test_refused_connection() -> None:
    from tests.support.services import closed_port

    result = await run(f"http://127.0.0.1:{closed_port()}/")
    assert result.status == "down"
    assert result.error is not None and "connection refused" in result.error.lower()


async def test_secret_header_is_sent_but_never_shown(
    http_target: targets.TargetServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    token = "s3cr3t-token-value-1234567890"
    monkeypatch.setenv("STATUS_TOKEN", f"Bearer {token}")
    key_file = tmp_path / "key"
    key_file.write_text("file-api-key-0987654321\n")
    result = await run(
        base(http_target) + "/echo-auth",
        headers_env={"Authorization": "STATUS_TOKEN"},
        headers_file={"X-Api-Key": str(key_file)},
        body_contains=token,  # a careless assertion quoting the secret back
        expected_status=[401],
    )
    assert http_target.seen_headers[-1]["Authorization"] == f"Bearer {token}"
    assert http_target.seen_headers[-1]["X-Api-Key"] == "file-api-key-0987654321"
    assert result.status == "down" and result.error is not None
    assert token not in result.error and "[REDACTED]" in result.error


async def test_missing_secret_variable_is_a_clear_failure(http_target: targets.TargetServer) -> None:
    result = await run(
        base(http_target) + "/healthy", headers_env={"Authorization": "LK_TEST_UNSET_VARIABLE"}
    )
    assert result.error == (
        "environment variable LK_TEST_UNSET_VARIABLE (the value of header Authorization) is not set"
    )


# --- TLS ---------------------------------------------------------------------------------
async def test_self_signed_certificate_is_not_trusted(pki: Pki) -> None:
    with targets.serve(pki.self_signed.server_context()) as server:
        result = await run(base(server, "https") + "/healthy")
    assert result.status == "down"
    assert result.error is not None and "not trusted" in result.error and "self" in result.error.lower()


async def test_expired_certificate_is_not_trusted(pki: Pki) -> None:
    with targets.serve(pki.expired.server_context()) as server:
        result = await run(base(server, "https") + "/healthy", ca_file=str(pki.ca_file))
    assert result.error is not None and "certificate has expired" in result.error


async def test_tls_min_days(pki: Pki) -> None:
    with targets.serve(pki.short_lived.server_context()) as server:
        short = await run(base(server, "https") + "/healthy", ca_file=str(pki.ca_file), tls_min_days=14)
        enough = await run(base(server, "https") + "/healthy", ca_file=str(pki.ca_file), tls_min_days=2)
    assert short.error == "certificate expires in 3 days, expected at least 14"
    assert short.tls_expiry_seconds is not None and 2.9 * 86400 < short.tls_expiry_seconds < 3 * 86400
    assert enough.ok and enough.tls_expiry_seconds == pytest.approx(short.tls_expiry_seconds, abs=60)


async def test_tls_min_days_over_plain_http_is_refused(http_target: targets.TargetServer) -> None:
    result = await run(base(http_target) + "/healthy", tls_min_days=1)
    assert result.error == "tls_min_days is set but the answer did not come over TLS"


async def test_shared_client_is_used_and_left_open(http_target: targets.TargetServer) -> None:
    import httpx

    async with httpx.AsyncClient(headers={"User-Agent": "lightkeeper-test"}) as client:
        first = await run_probe(http(base(http_target) + "/healthy"), http_client=client)
        second = await run_probe(http(base(http_target) + "/status/503"), http_client=client)
        assert not client.is_closed
    assert first.ok and second.error == "expected status 200-399, got 503"
    assert http_target.seen_headers[-1]["User-Agent"] == "lightkeeper-test"
