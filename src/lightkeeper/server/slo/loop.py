"""The background loop `main.py` starts: scrape, then step the alerts, every scrape interval.

The samples are kept even with `prometheus_url` set (history and the monthly report
read them); the alerter then steps only probe SLIs (see `alerting.Alerter`).
"""

from __future__ import annotations

import asyncio
import logging

import httpx
from sqlalchemy import Engine

from lightkeeper.server.config import ServerConfig
from lightkeeper.server.slo.alerting import Alerter
from lightkeeper.server.slo.scraper import Scraper

log = logging.getLogger(__name__)


async def run(config: ServerConfig, engine: Engine, client: httpx.AsyncClient) -> None:
    """Returns at once when the spec has no SLOs (nothing to scrape)."""
    spec = config.spec
    if spec is None or not spec.slos:
        return
    scraper = Scraper(engine, spec, config.slo_environment, client)
    alerter = await asyncio.to_thread(Alerter, engine, spec, scraper.env_name)
    while True:
        try:
            await scraper.scrape_once()
            await asyncio.to_thread(alerter.step)
        except Exception:
            log.exception("SLO round failed; retrying next interval")
        await asyncio.sleep(scraper.interval)
