"""Readiness checks for `lightkeeper.instrument(app, checks=[...])`.

from lightkeeper import health
lightkeeper.instrument(app, checks=[health.postgres(DATABASE_URL), health.redis(REDIS_URL), my_check])
"""

from lightkeeper.sdk.health import Check, CheckResult, Report, check, postgres, redis, sqlalchemy

__all__ = ["Check", "CheckResult", "Report", "check", "postgres", "redis", "sqlalchemy"]
