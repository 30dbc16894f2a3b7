"""A small service that touches every traced library, served by a real uvicorn (or
gunicorn) in tests/integration/test_tracing.py, test_sentry.py and test_trace_continuity.py.

Its routes and their environment variables are in tests.apps.traced_routes. Lightkeeper's
own settings come from `LIGHTKEEPER_*` / `OTEL_*` / `SENTRY_DSN`.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI

import lightkeeper
from tests.apps import traced_routes


def build(**settings: Any) -> FastAPI:
    app = FastAPI()
    app.include_router(traced_routes.router)
    lightkeeper.instrument(
        app,
        service=os.environ.get("TRACED_SERVICE", "traced"),
        environment="test",
        version="1.2.3",
        **settings,
    )
    if os.environ.get("TRACED_OUTBOUND_INSTRUMENTED", "1") == "1":
        lightkeeper.instrument_httpx()
    if os.environ.get("TRACED_CELERY") == "1":
        traced_routes._celery()
    return app


app = build()
