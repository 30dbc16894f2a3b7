"""The FastAPI application: `uvicorn examples.saas_app.main:app`.

Observability is the `lightkeeper.instrument(...)` call in `create_app`: request
metrics at /metrics, JSON logs with request ids, and /health, /health/live,
/health/ready backed by the database (and Redis when configured); one more line adds
the database's own signals (`instrument_sqlalchemy`). The rest of the product signals
are declared too: usage events and the content workflow's gauges come from the app's
observability spec (examples/lightkeeper.yaml, the file the alerts are generated from,
so the two cannot disagree), plus browser vitals (RUM, on the pages under /app) and the
LLM client's cost.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker
from starlette.concurrency import run_in_threadpool

import lightkeeper
from examples.saas_app import __version__
from examples.saas_app.config import AppConfig
from examples.saas_app.db import init_database, make_engine
from examples.saas_app.routers import assistant, auth, content, organizations, pages, reports
from lightkeeper import health, workflow

# The observability spec next to this package: its `usage:` section lists every event the
# app counts with lightkeeper.usage() (anything else is refused, not a new series), and its
# `workflow:` and `workflow_aggregates:` sections the gauges sampled from the database.
SPEC = Path(__file__).resolve().parent.parent / "lightkeeper.yaml"


def create_app(database_url: str | None = None) -> FastAPI:
    config = AppConfig.from_env(database_url)
    # Read before anything starts: an invalid spec stops the app with its file:line error.
    usage_events = lightkeeper.usage_events_from_spec(SPEC)
    entities, aggregates = workflow.from_spec(SPEC)
    engine = make_engine(config.database_url)
    lightkeeper.instrument_sqlalchemy(engine)  # query, slow-query, error and pool metrics

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(init_database, engine)
        # Started once the tables (and the view the aggregates read) exist; its own
        # connection, never one from the app's pool.
        sampler = lightkeeper.instrument_workflow(
            engine,
            entities=entities,
            aggregates=aggregates,
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
    for module in (auth, organizations, content, reports, assistant, pages):
        app.include_router(module.router)

    lightkeeper.instrument(
        app,
        service="saas-api",
        environment=config.environment,
        version=__version__,
        checks=readiness_checks(engine, config),
        usage_events=usage_events,
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
