"""The server's periodic cost work: budget checks and raw-event retention, one step per minute."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from sqlalchemy import Engine

from lightkeeper.server.config import ServerConfig
from lightkeeper.server.cost import budgets, ingest

ENV_RETENTION_DAYS = "LIGHTKEEPER_LLM_RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 90
EVERY_SECONDS = 60.0


def step(config: ServerConfig, engine: Engine) -> None:
    now = datetime.now(UTC)
    if config.spec is not None:
        budgets.check(engine, config.spec.budgets, now, service=config.service)
    days = int(os.environ.get(ENV_RETENTION_DAYS) or DEFAULT_RETENTION_DAYS)
    ingest.apply_retention(engine, now, retention_days=days)
