"""Run one probe: dispatch by type, bound it by its timeout, never raise.

Every way a probe can go wrong ends as a `ProbeResult` whose `error` says what was
expected and what came back, cleaned of credentials. Cancellation (the scheduler
shutting down) is the one exception that propagates.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx

from lightkeeper.server.probes import dns, http, postgres, redis, tcp, tls
from lightkeeper.server.probes.connectivity import ConnectivityChecker
from lightkeeper.server.probes.errors import describe
from lightkeeper.server.probes.heartbeat import HeartbeatHistory, evaluate_heartbeat
from lightkeeper.server.probes.result import Observation, ProbeFailure, ProbeResult, Status, clean_error
from lightkeeper.spec.probes import (
    DnsProbe,
    HeartbeatProbe,
    HttpProbe,
    PostgresProbe,
    Probe,
    RedisProbe,
    TcpProbe,
    TlsProbe,
)


async def _execute(
    probe: Probe, found_secrets: list[str], http_client: httpx.AsyncClient | None
) -> Observation:
    if isinstance(probe, HttpProbe):
        return await http.check(probe, found_secrets, http_client)
    if isinstance(probe, TcpProbe):
        return await tcp.check(probe)
    if isinstance(probe, DnsProbe):
        return await dns.check(probe)
    if isinstance(probe, TlsProbe):
        return await tls.check(probe)
    if isinstance(probe, PostgresProbe):
        return await postgres.check(probe, found_secrets)
    if isinstance(probe, RedisProbe):
        return await redis.check(probe, found_secrets)
    raise ProbeFailure(f"probe type {probe.type} is not run by run_probe")


def _heartbeat(probe: HeartbeatProbe, history: HeartbeatHistory | None, now: datetime) -> ProbeResult:
    if history is None:
        return ProbeResult(probe.name, False, "no_data", now, None, "no ping history available")
    verdict = evaluate_heartbeat(probe, history, now)
    status: Status = "no_data" if verdict.state == "no_data" else "down" if verdict.state == "down" else "up"
    return ProbeResult(probe.name, status == "up", status, now, None, verdict.error)


async def run_probe(
    probe: Probe,
    *,
    connectivity: ConnectivityChecker | None = None,
    http_client: httpx.AsyncClient | None = None,
    heartbeat: HeartbeatHistory | None = None,
) -> ProbeResult:
    """Execute `probe` once and report; `http_client` lets the scheduler share connection pools.

    Heartbeat probes are judged from `heartbeat` (the pings the store holds) instead of
    contacting anything.
    """
    checked_at = datetime.now(UTC)
    if isinstance(probe, HeartbeatProbe):
        return _heartbeat(probe, heartbeat, checked_at)
    found_secrets: list[str] = []
    latency_ms: float | None = None
    expiry: float | None = None
    try:
        async with asyncio.timeout(probe.timeout_seconds):
            observed = await _execute(probe, found_secrets, http_client)
        return ProbeResult(
            probe.name, True, "up", checked_at, observed.latency_ms, None, observed.tls_expiry_seconds
        )
    except TimeoutError:
        error = f"timed out after {probe.timeout_seconds:.1f} s"
    except ProbeFailure as failure:
        error, latency_ms = str(failure), failure.latency_ms
        expiry = failure.tls_expiry_seconds
    except Exception as exc:
        # a probe reports every failure; it never crashes the scheduler
        error = describe(exc, _shown_target(probe))
    error = clean_error(error, found_secrets)
    if connectivity is not None and not await connectivity.online():
        offline = f"server offline (connectivity check failed); probe said: {error}"
        return ProbeResult(probe.name, False, "no_data", checked_at, None, offline, None)
    return ProbeResult(probe.name, False, "down", checked_at, latency_ms, error, expiry)


def _shown_target(probe: Probe) -> str:
    return getattr(probe, "target", probe.name)
