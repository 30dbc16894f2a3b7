"""The tls probe: a verified handshake and a certificate valid for at least `min_days`.

When verification fails, the certificate is fetched once more without verification
only to read its expiry, so `probe_tls_expiry_seconds` still tells how long ago an
expired certificate lapsed; the probe stays down with the verification message.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time

from lightkeeper.server.probes import certs
from lightkeeper.server.probes.errors import describe
from lightkeeper.server.probes.result import Observation, ProbeFailure
from lightkeeper.spec.probes import TlsProbe, parse_host_port


async def _handshake(host: str, port: int, context: ssl.SSLContext) -> tuple[float, float]:
    started = time.perf_counter()
    _, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=host)
    latency_ms = (time.perf_counter() - started) * 1000
    try:
        return latency_ms, certs.peer_expiry(writer.get_extra_info("ssl_object"))
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):  # the peer may have dropped the stream already
            await writer.wait_closed()


async def check(probe: TlsProbe) -> Observation:
    host, port = parse_host_port(probe.target, default_port=443)
    try:
        latency_ms, expiry = await _handshake(host, port, certs.context(probe.ca_file))
    except ssl.SSLCertVerificationError as exc:
        unverified = ssl.create_default_context()
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE
        try:
            _, lapsed = await _handshake(host, port, unverified)
        except (OSError, ssl.SSLError, ProbeFailure):
            lapsed = None
        raise ProbeFailure(describe(exc, probe.target), tls_expiry_seconds=lapsed) from None
    try:
        certs.check_min_days(expiry, probe.min_days)
    except ProbeFailure as failure:
        failure.latency_ms = latency_ms
        failure.tls_expiry_seconds = expiry
        raise
    return Observation(latency_ms=latency_ms, tls_expiry_seconds=expiry)
