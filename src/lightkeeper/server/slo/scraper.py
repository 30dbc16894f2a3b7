"""Scrape one environment's targets at the spec's interval and store each SLO's counts.

One failed target is logged and skipped for that round (a missed scrape): the math
treats the gap like Prometheus does, so nothing is stored for it and nothing invented.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import httpx
from sqlalchemy import Engine

from lightkeeper.server.slo import samples, series
from lightkeeper.spec.models import Environment, Spec, duration_seconds

log = logging.getLogger(__name__)


def pick_environment(spec: Spec, name: str | None) -> tuple[str, Environment]:
    """The named environment, or the spec's first; an unknown name is a clear error."""
    if name is None:
        first = next(iter(spec.environments))
        return first, spec.environments[first]
    if name not in spec.environments:
        known = ", ".join(spec.environments)
        raise ValueError(f"no environment named {name!r} in the spec (known: {known})")
    return name, spec.environments[name]


def interval_seconds(spec: Spec, env: Environment) -> float:
    return duration_seconds(env.scrape_interval or spec.prometheus.scrape_interval)


class Scraper:
    """Owns the selections and the HTTP client use; `scrape_once` is the unit tests drive."""

    def __init__(self, engine: Engine, spec: Spec, environment: str | None, client: httpx.AsyncClient):
        self.engine = engine
        self.env_name, self.env = pick_environment(spec, environment)
        self.interval = interval_seconds(spec, self.env)
        # probe and deployment SLIs come from the server's own store, not from /metrics
        self.selections = [series.selection(spec, slo) for slo in spec.slos if series.scraped(slo)]
        self.client = client
        self._token = _read_token(self.env.bearer_token_file)

    def url(self, target: str) -> str:
        return f"{self.env.scheme}://{target}{self.env.metrics_path}"

    async def scrape_once(self, at: datetime | None = None) -> int:
        """Scrape every target once; returns how many targets answered."""
        if not self.selections:
            return 0
        moment = at or datetime.now(UTC)
        pages = await asyncio.gather(*(self._fetch(t) for t in self.env.targets))
        rows: list[tuple[str, str, samples.Sample]] = []
        for target, text in zip(self.env.targets, pages, strict=True):
            if text is None:
                continue
            found = series.count(text, self.selections)
            for s in self.selections:
                # A target that answers without the SLO's series has counted nothing yet: 0, not a gap.
                counts = found.get(s.slo, series.Counts(0.0, 0.0))
                rows.append((s.slo, target, samples.Sample(moment, counts.good, counts.total)))
        await asyncio.to_thread(samples.write_many, self.engine, rows)
        return sum(1 for p in pages if p is not None)

    async def _fetch(self, target: str) -> str | None:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        try:
            response = await self.client.get(self.url(target), headers=headers, timeout=self.interval)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("SLO scrape of %s failed: %s", target, type(exc).__name__)
            return None
        return response.text

    async def run(self) -> None:
        while True:
            try:
                await self.scrape_once()
            except Exception:
                log.exception("SLO scrape round failed")
            await asyncio.sleep(self.interval)


def _read_token(path: str | None) -> str | None:
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip() or None
    except OSError:
        log.warning("cannot read the /metrics token file; scraping without it")
        return None
