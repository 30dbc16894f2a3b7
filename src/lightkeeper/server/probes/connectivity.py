"""Is the server itself online? Asked only after a probe failed.

One checker is shared by every probe: concurrent failures wait for a single check
(a lock), and a verdict is reused for `cache_seconds`, so an outage that fails a
thousand probes costs one request to the known-good target, not a thousand.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import httpx

from lightkeeper.server.probes.tcp import connect_time_ms
from lightkeeper.spec.probes import ConnectivityCheck, parse_host_port


class ConnectivityChecker:
    def __init__(self, check: ConnectivityCheck) -> None:
        self.check = check
        self._lock = asyncio.Lock()
        self._verdict: bool | None = None
        self._checked_at = 0.0

    async def online(self) -> bool:
        async with self._lock:
            fresh = time.monotonic() - self._checked_at < self.check.cache_seconds
            if self._verdict is None or not fresh:
                self._verdict = await self._probe()
                self._checked_at = time.monotonic()
            return self._verdict

    async def _probe(self) -> bool:
        try:
            async with asyncio.timeout(self.check.timeout_seconds):
                if urlsplit(self.check.target).scheme in ("http", "https"):
                    async with httpx.AsyncClient(timeout=self.check.timeout_seconds) as client:
                        await client.get(self.check.target)  # any answer proves the network works
                else:
                    await connect_time_ms(*parse_host_port(self.check.target))
        except (TimeoutError, OSError, httpx.HTTPError):
            return False
        return True
