"""The FastAPI application: `uvicorn examples.saas_app.main:app`.

Observability is the `lightkeeper.instrument(...)` call in `create_app`: request
metrics at /metrics, JSON logs with request ids, and /health, /health/live,
/health/ready backed by the database (and Redis when configured); one more line adds
the database's own signals (`instrument_sqlalchemy`).
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
from examples.saas_app.routers import auth, content, organizations, reports
from lightkeeper import health


def create_app(database_url: str | None = None) -> FastAPI:
    config = AppConfig.from_env(database_url)
    engine = make_engine(config.database_url)
    lightkeeper.instrument_sqlalchemy(engine)  # query, slow-query, error and pool metrics

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(init_database, engine)
        yield
        engine.dispose()

    app = FastAPI(title="Acme Content API", version=__version__, lifespan=lifespan)
    app.state.config = config
    app.state.sessions = sessionmaker(engine, expire_on_commit=False)
    app.state.failures = reports.FailureSchedule(config.flaky_rate)
    for module in (auth, organizations, content, reports):
        app.include_router(module.router)

    lightkeeper.instrument(
        app,
        service="saas-api",
        environment=config.environment,
        version=__version__,
        checks=readiness_checks(engine, config),
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
