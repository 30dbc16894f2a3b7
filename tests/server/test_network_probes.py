"""tcp, dns, tls, postgres and redis probes against real local services, and the connectivity check."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import TypeAdapter

from lightkeeper.server.probes import ConnectivityChecker, run_probe
from lightkeeper.spec.probes import ConnectivityCheck, Probe
from tests.server import targets
from tests.server.conftest import Pki
from tests.support.services import PG_ADMIN_URL, REDIS_HOST, REDIS_PORT, closed_port, silent_listener

_PROBE: TypeAdapter[Probe] = TypeAdapter(Probe)


def probe(kind: str, target: str, **fields: Any) -> Probe:
    return _PROBE.validate_python({"name": f"{kind}-probe", "type": kind, "target": target, **fields})


# --- tcp -------------------------------------------------------------------------------------
async def test_tcp_open_and_refused(http_target: targets.TargetServer) -> None:
    up = await run_probe(probe("tcp", f"127.0.0.1:{http_target.port}"))
    assert up.ok and up.latency_ms is not None
    port = closed_port()
    down = await run_probe(probe("tcp", f"127.0.0.1:{port}"))
    assert down.status == "down" and down.error == f"connection refused by 127.0.0.1:{port}"


# --- dns -------------------------------------------------------------------------------------
async def test_dns_localhost_resolves_to_loopback() -> None:
    assert (await run_probe(probe("dns", "localhost", expected_address="127.0.0.1"))).ok
    wrong = await run_probe(probe("dns", "localhost", expected_address="10.9.8.7"))
    assert wrong.error is not None and wrong.error.startswith("localhost resolved to ")
    assert wrong.error.endswith(", expected 10.9.8.7") and "127.0.0.1" in wrong.error


async def test_dns_unknown_name_is_down() -> None:
    result = await run_probe(probe("dns", "no-such-host.invalid", timeout_seconds=8))
    assert result.status == "down"
    assert result.error is not None and result.error.startswith("no-such-host.invalid does not resolve")


# --- tls -------------------------------------------------------------------------------------
async def test_tls_probe_expiry(pki: Pki) -> None:
    with targets.serve(pki.long_lived.server_context()) as server:
        good = await run_probe(probe("tls", f"127.0.0.1:{server.port}", ca_file=str(pki.ca_file)))
    assert good.ok and good.tls_expiry_seconds is not None and good.tls_expiry_seconds > 360 * 86400
    with targets.serve(pki.short_lived.server_context()) as server:
        short = await run_probe(probe("tls", f"127.0.0.1:{server.port}", ca_file=str(pki.ca_file)))
    assert short.error == "certificate expires in 3 days, expected at least 14"


async def test_tls_probe_expired_and_self_signed(pki: Pki) -> None:
    with targets.serve(pki.expired.server_context()) as server:
        expired = await run_probe(probe("tls", f"127.0.0.1:{server.port}", ca_file=str(pki.ca_file)))
    assert expired.error is not None and "certificate has expired" in expired.error
    # the unverified second look still reports how long ago it lapsed
    assert expired.tls_expiry_seconds is not None and -5.1 * 86400 < expired.tls_expiry_seconds < -4.9 * 86400
    with targets.serve(pki.self_signed.server_context()) as server:
        self_signed = await run_probe(probe("tls", f"127.0.0.1:{server.port}"))
    assert self_signed.error is not None and "self-signed certificate" in self_signed.error


# --- postgres --------------------------------------------------------------------------------
async def test_postgres_select_one_and_wrong_database() -> None:
    up = await run_probe(probe("postgres", PG_ADMIN_URL))
    assert up.ok and up.latency_ms is not None
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    down = await run_probe(probe("postgres", f"{base}/lk_no_such_database"))
    assert down.status == "down"
    assert down.error is not None and 'database "lk_no_such_database" does not exist' in down.error


async def test_postgres_password_never_in_error(monkeypatch: pytest.MonkeyPatch) -> None:
    password = "pg-Pa55word-never-shown"
    monkeypatch.setenv("LK_TEST_PG_PASSWORD", password)
    port = closed_port()
    result = await run_probe(
        probe("postgres", f"postgresql://app@127.0.0.1:{port}/app", password_env="LK_TEST_PG_PASSWORD")
    )
    assert result.status == "down" and result.error is not None
    assert result.error.startswith("cannot connect:") and password not in result.error


# --- redis -----------------------------------------------------------------------------------
async def test_redis_ping_and_closed_port() -> None:
    assert (await run_probe(probe("redis", f"{REDIS_HOST}:{REDIS_PORT}"))).ok
    assert (await run_probe(probe("redis", f"redis://{REDIS_HOST}:{REDIS_PORT}/0"))).ok
    port = closed_port()
    started = time.monotonic()
    down = await run_probe(probe("redis", f"127.0.0.1:{port}", timeout_seconds=5))
    assert time.monotonic() - started < 5.5
    assert down.status == "down" and down.error is not None and down.error.startswith("PING failed:")


async def test_redis_hanging_server_times_out() -> None:
    with silent_listener() as port:
        started = time.monotonic()
        result = await run_probe(probe("redis", f"127.0.0.1:{port}", timeout_seconds=1))
        assert time.monotonic() - started < 3.0
    assert result.error == "timed out after 1.0 s"


# --- connectivity ----------------------------------------------------------------------------
async def test_offline_server_records_no_data(http_target: targets.TargetServer) -> None:
    failing = probe("tcp", f"127.0.0.1:{closed_port()}")
    offline = ConnectivityChecker(ConnectivityCheck(target=f"127.0.0.1:{closed_port()}"))
    result = await run_probe(failing, connectivity=offline)
    assert (result.status, result.ok) == ("no_data", False)
    assert result.error is not None and result.error.startswith("server offline (connectivity check failed)")

    online = ConnectivityChecker(ConnectivityCheck(target=f"http://127.0.0.1:{http_target.port}/status/503"))
    blamed = await run_probe(failing, connectivity=online)
    assert blamed.status == "down"
    assert (await run_probe(probe("tcp", f"127.0.0.1:{http_target.port}"), connectivity=offline)).ok


async def test_connectivity_verdict_is_cached(http_target: targets.TargetServer) -> None:
    checker = ConnectivityChecker(ConnectivityCheck(target=f"127.0.0.1:{http_target.port}", cache_seconds=60))
    assert await checker.online()
    http_target.shutdown()
    http_target.server_close()
    assert await checker.online()  # cached: one check serves a burst of failing probes
    fresh = ConnectivityChecker(ConnectivityCheck(target=f"127.0.0.1:{http_target.port}", cache_seconds=0))
    assert not await fresh.online()


async def test_inline_dsn_password_that_slipped_past_validation_is_still_hidden() -> None:
    """Defence in depth: a probe built without validation (old stored row) must not leak either."""
    from lightkeeper.spec.probes import PostgresProbe

    port = closed_port()
    unchecked = PostgresProbe.model_construct(
        name="legacy", type="postgres", target=f"postgresql://app:hunter2secret@127.0.0.1:{port}/app"
    )
    result = await run_probe(unchecked)
    assert result.status == "down" and result.error is not None
    assert "hunter2secret" not in result.error and "app:" not in result.error


def test_clean_error_strips_userinfo_and_known_secrets() -> None:
    from lightkeeper.server.probes.result import clean_error

    text = clean_error("GET https://bob:pw1@x.example/a failed; key opaque-value-42", ["opaque-value-42"])
    assert text == "GET https://x.example/a failed; key [REDACTED]"
    assert len(clean_error("x" * 5000)) == 500
