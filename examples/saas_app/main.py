"""The FastAPI application: `uvicorn examples.saas_app.main:app`.

Observability is the `lightkeeper.instrument(...)` call in `create_app`: request
metrics at /metrics, JSON logs with request ids, and /health, /health/live,
/health/ready backed by the database (and Redis when configured); one more line adds
the database's own signals (`instrument_sqlalchemy`). The rest of the product signals
are declared here too: usage events, the content workflow's gauges sampled from the
database, browser vitals (RUM), and the LLM client's cost.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker
from starlette.concurrency import run_in_threadpool

import lightkeeper
from examples.saas_app import __version__
from examples.saas_app.config import AppConfig
from examples.saas_app.db import init_database, make_engine
from examples.saas_app.models import ContentItem
from examples.saas_app.routers import assistant, auth, content, organizations, reports
from lightkeeper import health
from lightkeeper.workflow import Entity

# Every event the app counts with lightkeeper.usage(); anything else is refused, not a new series.
USAGE_EVENTS: dict[str, dict[str, list[str]]] = {
    "login_succeeded": {},
    "organization_created": {},
    "workspace_created": {},
    "content_item_created": {"plan": ["free", "pro", "team"]},
    "comment_added": {},
    "content_item_approved": {},
    "content_item_published": {},
    "feedback_report_submitted": {},
}

# The editorial workflow (models.ContentStatus): "processing" is the machine's step and
# can get stuck; draft and review wait for a person and never count as stuck.
CONTENT_WORKFLOW = Entity(
    ContentItem,
    name="content_item",
    processing=["processing"],
    waiting=["draft", "review", "approved"],
    terminal=["published"],
    failed=["failed"],
    age_column="status_changed_at",
    stuck_after=["30m", "24h"],
)


def create_app(database_url: str | None = None) -> FastAPI:
    config = AppConfig.from_env(database_url)
    engine = make_engine(config.database_url)
    lightkeeper.instrument_sqlalchemy(engine)  # query, slow-query, error and pool metrics

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(init_database, engine)
        # Started once the tables exist; its own connection, never one from the app's pool.
        sampler = lightkeeper.instrument_workflow(
            engine,
            entities=[CONTENT_WORKFLOW],
            interval_seconds=config.workflow_interval,
            timeout_seconds=min(10.0, config.workflow_interval),
        )
        try:
            yield
        finally:
            sampler.stop()
            engine.dispose()

    app = FastAPI(title="Acme Content API", version=__version__, lifespan=lifespan)
    app.state.config = config
    app.state.sessions = sessionmaker(engine, expire_on_commit=False)
    app.state.failures = reports.FailureSchedule(config.flaky_rate)
    app.state.llm = assistant.make_client(config.openai_base_url, config.openai_api_key)
    for module in (auth, organizations, content, reports, assistant):
        app.include_router(module.router)

    lightkeeper.instrument(
        app,
        service="saas-api",
        environment=config.environment,
        version=__version__,
        checks=readiness_checks(engine, config),
        usage_events=USAGE_EVENTS,
        llm_operations=(assistant.OPERATION,),
        rum_enabled=True,
    )
    return app


def readiness_checks(engine: Engine, config: AppConfig) -> list[Any]:
    """What must answer before this instance takes traffic."""
    if engine.dialect.name == "postgresql":
        checks = [health.postgres(engine)]
    else:
        checks = [health.sqlalchemy(engine, name=engine.dialect.name)]
    if config.redis_url:
        checks.append(health.redis(config.redis_url))
    return checks


app = create_app()
