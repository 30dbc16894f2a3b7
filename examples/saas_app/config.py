"""Everything the app reads from its environment, read once at start-up.

| variable            | default                                  |
|---------------------|------------------------------------------|
| SAAS_DATABASE_URL   | SQLite file in the system temp directory |
| SAAS_ENVIRONMENT    | demo                                     |
| SAAS_REDIS_URL      | unset (no Redis readiness check)         |
| SAAS_SECRET_KEY     | random per process                       |
| SAAS_FLAKY_RATE     | 0.2 (share of /api/flaky calls that fail) |
| SAAS_OPENAI_BASE_URL | unset (the OpenAI API when SAAS_OPENAI_API_KEY is set) |
| SAAS_OPENAI_API_KEY | unset (no LLM: the summary route answers 503) |
| SAAS_WORKFLOW_INTERVAL | 60 (seconds between workflow gauge samples) |
"""

from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path


def default_database_url() -> str:
    return f"sqlite:///{Path(tempfile.gettempdir()) / 'lightkeeper-saas-app.db'}"


@dataclass(frozen=True)
class AppConfig:
    database_url: str
    environment: str
    redis_url: str | None
    # Signs login tokens. Random per process unless set, so with several workers set it
    # explicitly or a token issued by one worker is rejected by the next.
    secret_key: str
    flaky_rate: float
    openai_base_url: str | None = None
    openai_api_key: str | None = None
    workflow_interval: float = 60.0

    @classmethod
    def from_env(cls, database_url: str | None = None) -> AppConfig:
        raw_rate = os.environ.get("SAAS_FLAKY_RATE", "0.2")
        try:
            rate = float(raw_rate)
        except ValueError:
            rate = -1.0
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"SAAS_FLAKY_RATE must be a number between 0 and 1, got {raw_rate!r}")
        return cls(
            database_url=database_url or os.environ.get("SAAS_DATABASE_URL") or default_database_url(),
            environment=os.environ.get("SAAS_ENVIRONMENT", "demo"),
            redis_url=os.environ.get("SAAS_REDIS_URL") or None,
            secret_key=os.environ.get("SAAS_SECRET_KEY") or secrets.token_urlsafe(32),
            flaky_rate=rate,
            openai_base_url=os.environ.get("SAAS_OPENAI_BASE_URL") or None,
            openai_api_key=os.environ.get("SAAS_OPENAI_API_KEY") or None,
            workflow_interval=float(os.environ.get("SAAS_WORKFLOW_INTERVAL", "60")),
        )
