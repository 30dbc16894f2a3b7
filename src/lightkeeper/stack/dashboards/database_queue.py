"""Database & Queue: SQL latency and errors, the connection pool, Celery, Redis and caches."""

from __future__ import annotations

from lightkeeper import catalogue as cat
from lightkeeper.spec.models import Spec
from lightkeeper.stack.dashboards import panels as p
from lightkeeper.stack.dashboards import queries as q
from lightkeeper.stack.dashboards.panels import Json, Query
from lightkeeper.stack.names import DashboardKey

KEY: DashboardKey = "database-queue"


def build(spec: Spec) -> Json:
    env = "{{environment}}"
    pool = ("environment", "pool")
    task = ("environment", "task")
    pool_legend = "{{environment}} {{pool}}"
    task_legend = "{{environment}} {{task}}"
    hits = q.sum_rate(cat.CACHE_HITS, ("environment", "cache"))
    misses = q.sum_rate(cat.CACHE_MISSES, ("environment", "cache"))
    failed = q.sum_rate(cat.CELERY_TASKS, task, ("state", "=", "failed"))
    finished = q.sum_rate(cat.CELERY_TASKS, task, ("state", "=~", "failed|succeeded"))
    panels: list[Json] = [
        p.row("Database"),
        p.timeseries(
            "Query duration p95 by table",
            [
                Query(
                    q.quantile("0.95", cat.DB_QUERY_DURATION, ("environment", "table")),
                    "{{environment}} {{table}}",
                )
            ],
            unit="s",
        ),
        p.timeseries(
            "Queries by operation",
            [
                Query(
                    q.sum_rate(cat.DB_QUERY_DURATION, ("environment", "operation"), suffix="_count"),
                    "{{environment}} {{operation}}",
                )
            ],
            unit="ops",
            stack=True,
        ),
        p.timeseries(
            "Slow queries by table",
            [
                Query(
                    q.sum_rate(cat.DB_SLOW_QUERIES, ("environment", "operation", "table")),
                    "{{environment}} {{operation}} {{table}}",
                )
            ],
            unit="ops",
            description=p.threshold_note(spec, "db_slow_queries_per_second"),
        ),
        p.timeseries(
            "Database errors by type",
            [
                Query(
                    q.sum_rate(cat.DB_ERRORS, ("environment", "error_type")), "{{environment}} {{error_type}}"
                )
            ],
            unit="ops",
            description=p.threshold_note(spec, "db_error_rate"),
        ),
        p.timeseries(
            "Connection pool usage",
            [
                Query(
                    q.ratio(
                        q.aggregate("max", cat.DB_CONNECTIONS_ACTIVE, pool),
                        q.aggregate("max", cat.DB_CONNECTIONS_MAX, pool),
                    ),
                    pool_legend,
                )
            ],
            unit="percentunit",
            description="Checked-out connections over pool size plus overflow (busiest instance). "
            + p.threshold_note(spec, "db_pool_utilization"),
            thresholds=p.alert_thresholds(spec, "db_pool_utilization"),
        ),
        p.timeseries(
            "Pool connections",
            [
                Query(q.aggregate("sum", cat.DB_CONNECTIONS_ACTIVE, pool), "{{environment}} {{pool}} active"),
                Query(q.aggregate("sum", cat.DB_CONNECTIONS_IDLE, pool), "{{environment}} {{pool}} idle"),
                Query(q.aggregate("sum", cat.DB_CONNECTIONS_MAX, pool), "{{environment}} {{pool}} max"),
            ],
            w=8,
        ),
        p.timeseries(
            "Connection wait p95",
            [Query(q.quantile("0.95", cat.DB_CONNECTION_WAIT, pool), pool_legend)],
            unit="s",
            w=8,
        ),
        p.timeseries(
            "Redis command p95",
            [
                Query(
                    q.quantile("0.95", cat.REDIS_COMMAND_DURATION, ("environment", "command")),
                    "{{environment}} {{command}}",
                )
            ],
            unit="s",
            w=8,
        ),
        p.row("Celery"),
        p.timeseries(
            "Tasks by state",
            [Query(q.sum_rate(cat.CELERY_TASKS, ("environment", "state")), "{{environment}} {{state}}")],
            unit="ops",
        ),
        p.timeseries(
            "Task failure ratio",
            [Query(q.ratio(f"{failed} or {finished} * 0", finished), task_legend)],
            unit="percentunit",
            description="Failed over finished runs per task. "
            + p.threshold_note(spec, "celery_failure_rate"),
            thresholds=p.alert_thresholds(spec, "celery_failure_rate"),
        ),
        p.timeseries(
            "Queue length",
            [
                Query(
                    q.aggregate("max", cat.CELERY_QUEUE_LENGTH, ("environment", "queue")),
                    "{{environment}} {{queue}}",
                )
            ],
            description=p.threshold_note(spec, "celery_queue_length"),
            thresholds=p.alert_thresholds(spec, "celery_queue_length"),
        ),
        p.timeseries(
            "Queue wait p95 by task",
            [Query(q.quantile("0.95", cat.CELERY_TASK_QUEUE_WAIT, task), task_legend)],
            unit="s",
        ),
        p.timeseries(
            "Task duration p95",
            [Query(q.quantile("0.95", cat.CELERY_TASK_DURATION, task), task_legend)],
            unit="s",
        ),
        p.timeseries(
            "Task failures by exception",
            [
                Query(
                    q.sum_rate(cat.CELERY_TASK_FAILURES, ("environment", "task", "exception_type")),
                    "{{environment}} {{task}} {{exception_type}}",
                )
            ],
            unit="ops",
        ),
        p.stat(
            "Live workers",
            [Query(q.aggregate("max", cat.CELERY_WORKERS_UP), env)],
            description=p.threshold_note(spec, "celery_workers_min"),
            thresholds=p.alert_thresholds(spec, "celery_workers_min"),
            w=8,
        ),
        p.timeseries(
            "Time-limit hits",
            [
                Query(
                    q.sum_rate(cat.CELERY_TASK_TIME_LIMITS, ("environment", "task", "limit")),
                    "{{environment}} {{task}} {{limit}}",
                )
            ],
            unit="ops",
            w=8,
            h=4,
        ),
        p.row("Caches"),
        p.timeseries(
            "Cache hit ratio",
            [Query(q.ratio(hits, f"{hits} + {misses}"), "{{environment}} {{cache}}")],
            unit="percentunit",
            w=12,
        ),
        p.timeseries(
            "Redis errors by command",
            [
                Query(
                    q.sum_rate(cat.REDIS_COMMAND_ERRORS, ("environment", "command", "error_type")),
                    "{{environment}} {{command}} {{error_type}}",
                )
            ],
            unit="ops",
            w=12,
        ),
    ]
    return p.dashboard(
        spec,
        KEY,
        panels,
        description=f"What {spec.service} waits on: SQL, the connection pool, Celery, Redis and caches.",
    )
