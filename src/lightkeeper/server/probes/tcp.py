"""The tcp probe: the connection opens (nothing is sent)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from lightkeeper.server.probes.result import Observation
from lightkeeper.spec.probes import TcpProbe, parse_host_port


async def connect_time_ms(host: str, port: int) -> float:
    """Milliseconds to open (and then close) a TCP connection; raises OSError on failure."""
    started = time.perf_counter()
    _, writer = await asyncio.open_connection(host, port)
    elapsed = (time.perf_counter() - started) * 1000
    writer.close()
    with contextlib.suppress(OSError):  # the peer closing first is not a failure of the probe
        await writer.wait_closed()
    return elapsed


async def check(probe: TcpProbe) -> Observation:
    host, port = parse_host_port(probe.target)
    return Observation(latency_ms=await connect_time_ms(host, port))
