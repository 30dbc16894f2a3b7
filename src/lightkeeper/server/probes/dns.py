"""The dns probe: the name resolves, through the system resolver the service itself uses.

`getaddrinfo` (run by asyncio in its thread pool) rather than a DNS library, because the
question a probe answers is "can this host reach that name", /etc/hosts and search
domains included; the per-probe timeout bounds the wait.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time

from lightkeeper.server.probes.result import Observation, ProbeFailure
from lightkeeper.spec.probes import DnsProbe


async def check(probe: DnsProbe) -> Observation:
    started = time.perf_counter()
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(probe.target, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ProbeFailure(f"{probe.target} does not resolve ({exc.strerror})") from None
    latency_ms = (time.perf_counter() - started) * 1000
    addresses = sorted({str(ipaddress.ip_address(str(info[4][0]).split("%")[0])) for info in infos})
    if not addresses:
        raise ProbeFailure(f"{probe.target} resolved to no address", latency_ms=latency_ms)
    if probe.expected_address is not None:
        want = str(ipaddress.ip_address(probe.expected_address))
        if want not in addresses:
            raise ProbeFailure(
                f"{probe.target} resolved to {', '.join(addresses)}, expected {want}", latency_ms=latency_ms
            )
    return Observation(latency_ms=latency_ms)
