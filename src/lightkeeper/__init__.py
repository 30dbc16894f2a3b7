"""Lightkeeper: production observability for Python SaaS backends.

    import lightkeeper
    lightkeeper.instrument(app, service="api", environment="prod", version="1.4.2")

The public surface is this module plus `lightkeeper.health` and `lightkeeper.testing`.
Integrations import their library only when called, so installing the core package
never drags in Celery, SQLAlchemy or OpenTelemetry.
"""

from __future__ import annotations

from typing import Any

from lightkeeper._version import __version__
from lightkeeper.sdk.context import bind, current_request_id
from lightkeeper.sdk.instrument import instrument
from lightkeeper.sdk.usage import cache_hit, cache_miss, usage

__all__ = [
    "__version__",
    "bind",
    "cache_hit",
    "cache_miss",
    "capture_exception",
    "current_request_id",
    "instrument",
    "instrument_celery",
    "instrument_httpx",
    "instrument_redis",
    "instrument_requests",
    "instrument_sqlalchemy",
    "usage",
]


def capture_exception(exc: BaseException, **context: Any) -> None:
    """Report a handled error on a critical path (Sentry when configured, always logged)."""
    from lightkeeper.sdk.error_reporting import capture_exception as _capture

    _capture(exc, **context)


def instrument_celery(celery_app: Any, **options: Any) -> None:
    """Task metrics, request-id propagation and worker logs for a Celery app."""
    from lightkeeper.sdk.integrations.celery import instrument_celery as _instrument

    _instrument(celery_app, **options)


def instrument_sqlalchemy(engine: Any, **options: Any) -> None:
    """Query, slow-query, error and pool metrics for a sync or async SQLAlchemy engine."""
    from lightkeeper.sdk.integrations.sqlalchemy import instrument_sqlalchemy as _instrument

    _instrument(engine, **options)


def instrument_httpx(client: Any = None, **options: Any) -> None:
    """Outbound metrics and request-id / traceparent headers for httpx (one client or all)."""
    from lightkeeper.sdk.integrations.httpx import instrument_httpx as _instrument

    _instrument(client, **options)


def instrument_requests(**options: Any) -> None:
    """Outbound metrics and request-id / traceparent headers for `requests`."""
    from lightkeeper.sdk.integrations.requests import instrument_requests as _instrument

    _instrument(**options)


def instrument_redis(client: Any = None, **options: Any) -> None:
    """Command duration and error metrics for redis-py (one client or all)."""
    from lightkeeper.sdk.integrations.redis import instrument_redis as _instrument

    _instrument(client, **options)
