"""PromQL for every alert family and recording rule, built from catalogue signals.

Each builder turns (context, environments, threshold) into one expression; the alert
families in `alert_families.yaml` name their builder in `EXPRESSIONS`, which also
records the signals an expression reads, so a family over a signal nothing emits yet
can be left out. `rate` is always taken before `sum`, so a counter reset on one
instance never looks like a drop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lightkeeper import catalogue as cat
from lightkeeper.spec.models import Spec
from lightkeeper.stack import names, promql
from lightkeeper.stack.profile import Profile
from lightkeeper.stack.promql import Matcher, by, selector

SE = ("service", "environment")
RATE_WINDOW = "5m"
COST_WINDOW = "1h"
DEPLOY_WINDOW = "10m"
QUANTILES: tuple[tuple[str, str], ...] = (("p50", "0.5"), ("p95", "0.95"), ("p99", "0.99"))
BAD_STATUS = "5.."


# --- recording-rule names (dashboards may use them too) -----------------------------
def http_record(level: str, what: str, window: str) -> str:
    """e.g. `service_environment:http_requests:error_ratio_rate5m`; level names the grouping."""
    return f"{level}:{what}{window}"


def requests_rate_record(window: str, level: str = "service_environment") -> str:
    return http_record(level, f"{cat.HTTP_REQUESTS.base_name}:rate", window)


def error_ratio_record(window: str, level: str = "service_environment") -> str:
    return http_record(level, f"{cat.HTTP_REQUESTS.base_name}:error_ratio_rate", window)


def quantile_record(name: str, window: str, level: str = "service_environment") -> str:
    return http_record(level, f"{cat.HTTP_REQUEST_DURATION.name}:{name}_rate", window)


# --- the context every expression builder gets --------------------------------------
@dataclass(frozen=True)
class Ctx:
    spec: Spec
    profile: Profile

    @property
    def service(self) -> str:
        return self.spec.service

    def w(self, window: str = RATE_WINDOW) -> str:
        """A window or duration, scaled by the profile (the test profile runs 60x faster)."""
        return self.profile.window(window)

    def m(self, envs: tuple[str, ...] = (), *extra: Matcher) -> list[Matcher]:
        """The service matcher, the environment restriction if any, then `extra`."""
        found: list[Matcher] = [("service", "=", self.service)]
        if envs:
            found.append(promql.in_matcher("environment", envs))
        found.extend(extra)
        return found


ExprBuilder = Callable[[Ctx, tuple[str, ...], str], str]


def rate(
    ctx: Ctx, signal: cat.Signal, envs: tuple[str, ...], *extra: Matcher, window: str = RATE_WINDOW
) -> str:
    return f"rate({selector(signal, ctx.m(envs, *extra))}[{ctx.w(window)}])"


def sum_rate(
    ctx: Ctx, signal: cat.Signal, envs: tuple[str, ...], *labels: str, extra: tuple[Matcher, ...] = ()
) -> str:
    return f"sum {by(*SE, *labels)} ({rate(ctx, signal, envs, *extra)})"


def _error_rate(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"{selector(error_ratio_record(ctx.w()), ctx.m(envs))} > {t}"


def _latency(name: str) -> ExprBuilder:
    def build(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
        return f"{selector(quantile_record(name, ctx.w()), ctx.m(envs))} > {t}"

    return build


def _exceptions(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"{sum_rate(ctx, cat.HTTP_EXCEPTIONS, envs)} > {t}"


def _in_progress(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"sum {by(*SE, 'instance')} ({selector(cat.HTTP_REQUESTS_IN_PROGRESS, ctx.m(envs))}) > {t}"


def _cpu(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"{sum_rate(ctx, cat.PROCESS_CPU, envs, 'instance')} > {t}"


def _memory(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"max {by(*SE, 'instance')} ({selector(cat.PROCESS_RESIDENT_MEMORY, ctx.m(envs))}) > {t}"


def _db_pool(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    active = selector(cat.DB_CONNECTIONS_ACTIVE, ctx.m(envs))
    limit = selector(cat.DB_CONNECTIONS_MAX, ctx.m(envs))
    return f"max {by(*SE, 'instance', 'pool')} ({active} / ({limit} > 0)) > {t}"


def _db_errors(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"{sum_rate(ctx, cat.DB_ERRORS, envs)} > {t}"


def _db_slow(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"{sum_rate(ctx, cat.DB_SLOW_QUERIES, envs)} > {t}"


def _queue_length(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"max {by(*SE, 'queue')} ({selector(cat.CELERY_QUEUE_LENGTH, ctx.m(envs))}) > {t}"


def _celery_failures(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    failed = sum_rate(ctx, cat.CELERY_TASKS, envs, "task", extra=(("state", "=", "failed"),))
    done = sum_rate(ctx, cat.CELERY_TASKS, envs, "task", extra=(("state", "=~", "failed|succeeded"),))
    return f"({failed} / {done}) > {t}"


def _celery_workers(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"max {by(*SE)} ({selector(cat.CELERY_WORKERS_UP, ctx.m(envs))}) < {t}"


def _workflow(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    stuck = selector(cat.WORKFLOW_STUCK_ENTITIES, ctx.m(envs))
    return f"max {by(*SE, 'entity', 'status', 'threshold')} ({stuck}) > {t}"


def _cost(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    spend = f"rate({selector(cat.LLM_COST, ctx.m(envs))}[{ctx.w(COST_WINDOW)}])"
    return f"sum {by(*SE)} ({spend}) * 3600 > {t}"


def _health(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"min {by(*SE, 'check')} ({selector(cat.HEALTH_CHECK_UP, ctx.m(envs))}) == 0"


def _telemetry(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"absent({selector(cat.BUILD_INFO, ctx.m(envs))})"


def _service_up(ctx: Ctx, envs: tuple[str, ...]) -> str:
    """`up` of the service's own targets; Celery workers, when scraped, are told apart."""
    extra: tuple[Matcher, ...] = (
        ((names.COMPONENT_LABEL, "=", ""),) if names.scrapes_workers(ctx.spec) else ()
    )
    return selector(cat.UP, ctx.m(envs, *extra))


def _service_down(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"max {by(*SE)} ({_service_up(ctx, envs)}) == 0"


def _instance_down(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"max {by(*SE, 'instance')} ({_service_up(ctx, envs)}) == 0"


def _celery_workers_down(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    """Every worker target down, or none left to scrape: dead workers report nothing themselves."""
    (env,) = envs  # a per-environment family: the job is the environment's
    up = selector(cat.UP, ctx.m(envs, ("job", "=", names.celery_job(ctx.spec, env))))
    return f"max {by(*SE)} ({up}) == 0\nor\nabsent({up})"


# --- traffic floors: how many events a ratio or quantile alert is computed from ----------
TrafficBuilder = Callable[[Ctx, tuple[str, ...]], str]


def _http_traffic(ctx: Ctx, envs: tuple[str, ...]) -> str:
    return f"sum {by(*SE)} (increase({selector(cat.HTTP_REQUESTS, ctx.m(envs))}[{ctx.w()}]))"


def _latency_traffic(ctx: Ctx, envs: tuple[str, ...]) -> str:
    count = selector(f"{cat.HTTP_REQUEST_DURATION.name}_count", ctx.m(envs))
    return f"sum {by(*SE)} (increase({count}[{ctx.w()}]))"


def _task_traffic(ctx: Ctx, envs: tuple[str, ...]) -> str:
    done = selector(cat.CELERY_TASKS, ctx.m(envs, ("state", "=~", "failed|succeeded")))
    return f"sum {by(*SE, 'task')} (increase({done}[{ctx.w()}]))"


@dataclass(frozen=True)
class Traffic:
    """The events a ratio or quantile is computed from, and the labels the two share."""

    build: TrafficBuilder
    on: tuple[str, ...] = SE
    events: str = "requests"


def with_floor(expr: str, traffic: Traffic, ctx: Ctx, envs: tuple[str, ...], min_events: int) -> str:
    """`expr`, kept only where the window saw at least `min_events` events.

    Two failures out of three requests at 3 a.m. are a 67 % error ratio and a p99 of
    whatever the slowest was; neither is a reason to wake anybody.
    """
    return f"{expr}\nand on ({', '.join(traffic.on)})\n{traffic.build(ctx, envs)} >= {min_events}"


@dataclass(frozen=True)
class Expression:
    """A builder and the signals its PromQL reads (directly or through recording rules).

    `traffic` is set for ratios and quantiles: they get a minimum-event guard.
    """

    build: ExprBuilder
    reads: tuple[cat.Signal, ...]
    traffic: Traffic | None = None


EXPRESSIONS: dict[str, Expression] = {
    "error_rate": Expression(_error_rate, (cat.HTTP_REQUESTS,), Traffic(_http_traffic)),
    "latency_p95": Expression(_latency("p95"), (cat.HTTP_REQUEST_DURATION,), Traffic(_latency_traffic)),
    "latency_p99": Expression(_latency("p99"), (cat.HTTP_REQUEST_DURATION,), Traffic(_latency_traffic)),
    "exceptions": Expression(_exceptions, (cat.HTTP_EXCEPTIONS,)),
    "in_progress": Expression(_in_progress, (cat.HTTP_REQUESTS_IN_PROGRESS,)),
    "cpu": Expression(_cpu, (cat.PROCESS_CPU,)),
    "memory": Expression(_memory, (cat.PROCESS_RESIDENT_MEMORY,)),
    "db_pool": Expression(_db_pool, (cat.DB_CONNECTIONS_ACTIVE, cat.DB_CONNECTIONS_MAX)),
    "db_errors": Expression(_db_errors, (cat.DB_ERRORS,)),
    "db_slow": Expression(_db_slow, (cat.DB_SLOW_QUERIES,)),
    "queue_length": Expression(_queue_length, (cat.CELERY_QUEUE_LENGTH,)),
    "celery_failures": Expression(
        _celery_failures, (cat.CELERY_TASKS,), Traffic(_task_traffic, (*SE, "task"), "task runs")
    ),
    "celery_workers": Expression(_celery_workers, (cat.CELERY_WORKERS_UP,)),
    "workflow_stuck": Expression(_workflow, (cat.WORKFLOW_STUCK_ENTITIES,)),
    "llm_cost": Expression(_cost, (cat.LLM_COST,)),
    "health": Expression(_health, (cat.HEALTH_CHECK_UP,)),
    "telemetry_missing": Expression(_telemetry, (cat.BUILD_INFO,)),
    "service_down": Expression(_service_down, (cat.UP,)),
    "instance_down": Expression(_instance_down, (cat.UP,)),
    "celery_workers_down": Expression(_celery_workers_down, (cat.UP,)),
}
