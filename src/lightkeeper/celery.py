"""Celery: task metrics, request ids carried into tasks, worker logs, a readiness check.

    import lightkeeper
    from lightkeeper.celery import celery_check

    lightkeeper.instrument_celery(celery_app, metrics_port=9808)   # API and worker both import this
    lightkeeper.instrument(api, checks=[celery_check(celery_app, timeout=0.7)])

Celery itself is imported only when one of these is called (`pip install 'lightkeeper[celery]'`).
"""

from __future__ import annotations

from lightkeeper.sdk.integrations.celery import CeleryUnavailableError, celery_check, instrument_celery

__all__ = ["CeleryUnavailableError", "celery_check", "instrument_celery"]
