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


def _workflow_stale(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"max {by(*SE, 'entity')} ({selector(cat.WORKFLOW_SAMPLE_AGE, ctx.m(envs))}) > {t}"


def _cost(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    spend = f"rate({selector(cat.LLM_COST, ctx.m(envs))}[{ctx.w(COST_WINDOW)}])"
    return f"sum {by(*SE)} ({spend}) * 3600 > {t}"


def _unpriced(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"{sum_rate(ctx, cat.LLM_UNPRICED_CALLS, envs, 'provider', 'model')} > {t}"


def _health(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"min {by(*SE, 'check')} ({selector(cat.HEALTH_CHECK_UP, ctx.m(envs))}) == 0"


def _telemetry(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"absent({selector(cat.BUILD_INFO, ctx.m(envs))})"


def _service_up(ctx: Ctx, envs: tuple[str, ...]) -> str:
    """`up` of the service's own targets; Celery workers and node-exporters are told apart."""
    others = names.scrapes_workers(ctx.spec) or names.scrapes_nodes(ctx.spec)
    extra: tuple[Matcher, ...] = ((names.COMPONENT_LABEL, "=", ""),) if others else ()
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


# --- the lightkeeper server's own signals (scraped as one job, labelled by probe) -------
def server_selector(signal: cat.Signal) -> str:
    """The server serves every service's probes: its series are matched by job, not service."""
    return selector(signal, [("job", "=", names.SERVER_JOB)])


def _probe_down(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"min by (probe) ({server_selector(cat.PROBE_SUCCESS)}) == 0"


def _tls_expiry(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"min by (probe) ({server_selector(cat.PROBE_TLS_EXPIRY_SECONDS)}) / 86400 < {t}"


def _scheduler_lag(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"max by (instance) ({server_selector(cat.SERVER_SCHEDULER_LAG_SECONDS)}) > {t}"


def _outbox_depth(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"max by (instance) ({server_selector(cat.SERVER_OUTBOX_DEPTH)}) > {t}"


# --- product signals -----------------------------------------------------------------
USAGE_QUIET_WINDOW = "1h"
USAGE_QUIET_BASELINE = "1w"  # the same hour of the week
USAGE_QUIET_MIN_EVENTS = 30  # usual events per hour before a quiet hour means anything
FEEDBACK_EVENT = "feedback_report_submitted"


def _core_events(ctx: Ctx, envs: tuple[str, ...], fn: str = "rate", offset: bool = False) -> str:
    events = promql.in_matcher("event", tuple(ctx.spec.usage.core))
    sel = selector(cat.USAGE_EVENTS, ctx.m(envs, events))
    shift = f" offset {ctx.w(USAGE_QUIET_BASELINE)}" if offset else ""
    return f"sum {by(*SE, 'event')} ({fn}({sel}[{ctx.w(USAGE_QUIET_WINDOW)}]{shift}))"


def _usage_quiet(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    """This hour's rate over the same hour last week, where last week saw enough to compare.

    The floor on last week's hour keeps a quiet night from paging: half of three events
    is no signal. An event with no series left this hour (every process restarted and
    none counted it since) compares as zero instead of vanishing.
    """
    now, usual = _core_events(ctx, envs), _core_events(ctx, envs, offset=True)
    before = _core_events(ctx, envs, "increase", offset=True)
    return (
        f"({now}\nor\n{usual} * 0)\n/\n{usual}\n< {t}\n"
        f"and on ({', '.join(SE)}, event)\n{before} >= {USAGE_QUIET_MIN_EVENTS}"
    )


# Usage events declaring an `outcome` label with one of these values get a failure-ratio
# alert (payments, generations): the business metric the seeds alerted on.
OUTCOME_LABEL = "outcome"
FAILED_OUTCOMES = ("failure", "failed", "error")


def outcome_events(spec: Spec) -> tuple[str, ...]:
    """Declared usage events whose `outcome` label can say they failed."""
    found = [
        event
        for event, labels in spec.usage.declared().items()
        if set(labels.get(OUTCOME_LABEL, ())) & set(FAILED_OUTCOMES)
    ]
    return tuple(sorted(found))


def _outcome_scope(ctx: Ctx) -> tuple[Matcher, ...]:
    return (promql.in_matcher("event", outcome_events(ctx.spec)),)


def _usage_failures(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    failed: Matcher = promql.in_matcher(OUTCOME_LABEL, FAILED_OUTCOMES)
    return _failure_ratio(cat.USAGE_EVENTS, failed, _outcome_scope(ctx), ("event",))(ctx, envs, t)


def _usage_outcome_traffic(ctx: Ctx, envs: tuple[str, ...]) -> str:
    return _count_traffic(cat.USAGE_EVENTS, _outcome_scope(ctx), ("event",))(ctx, envs)


def _feedback(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"{sum_rate(ctx, cat.USAGE_EVENTS, envs, extra=(('event', '=', FEEDBACK_EVENT),))} > {t}"


def _usage_dropped(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"{sum_rate(ctx, cat.USAGE_EVENTS_DROPPED, envs, 'reason')} > {t}"


def _failure_ratio(
    signal: cat.Signal, bad: Matcher, scope: tuple[Matcher, ...], labels: tuple[str, ...] = ()
) -> ExprBuilder:
    """Failed calls over all calls of `scope`, grouped by `labels`."""

    def build(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
        failed = sum_rate(ctx, signal, envs, *labels, extra=(*scope, bad))
        total = sum_rate(ctx, signal, envs, *labels, extra=scope)
        return f"({failed} / {total}) > {t}"

    return build


def _count_traffic(
    signal: cat.Signal, scope: tuple[Matcher, ...], labels: tuple[str, ...] = ()
) -> TrafficBuilder:
    def build(ctx: Ctx, envs: tuple[str, ...]) -> str:
        sel = selector(signal, ctx.m(envs, *scope))
        return f"sum {by(*SE, *labels)} (increase({sel}[{ctx.w()}]))"

    return build


AUTH_FAILED: Matcher = ("outcome", "!=", "success")
DEPENDENCY_FAILED: Matcher = ("outcome", "!~", "success|client_error")
EMAIL: tuple[Matcher, ...] = (("dependency", "=", "email"),)
BLOB_STORAGE: tuple[Matcher, ...] = (("dependency", "=", "s3"),)
WEB_VITALS_QUANTILE = "0.75"  # Core Web Vitals are judged at the 75th percentile of page views


def _vital(signal: cat.Signal) -> ExprBuilder:
    def build(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
        bucket = selector(f"{signal.name}_bucket", ctx.m(envs))
        buckets = f"sum {by(*SE, 'page', 'le')} (rate({bucket}[{ctx.w()}]))"
        return f"histogram_quantile({WEB_VITALS_QUANTILE}, {buckets}) > {t}"

    return build


def _frontend_errors(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"{sum_rate(ctx, cat.FRONTEND_ERRORS, envs, 'page')} > {t}"


# --- hosts (node-exporter) -----------------------------------------------------------------
# Filesystems that are not disks: their "usage" is memory or an image layer, and a full
# tmpfs or overlay says nothing about the host's disks.
HOST_FS_EXCLUDED = "tmpfs|overlay|squashfs"


def _host_cpu(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    idle = rate(ctx, cat.NODE_CPU_SECONDS, envs, ("mode", "=", "idle"))
    return f"1 - avg {by(*SE, 'instance')} ({idle}) > {t}"


def _host_memory(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    available = selector(cat.NODE_MEMORY_AVAILABLE, ctx.m(envs))
    total = selector(cat.NODE_MEMORY_TOTAL, ctx.m(envs))
    return f"max {by(*SE, 'instance')} (1 - {available} / ({total} > 0)) > {t}"


def _host_disk(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    disks: Matcher = ("fstype", "!~", HOST_FS_EXCLUDED)
    available = selector(cat.NODE_FILESYSTEM_AVAIL, ctx.m(envs, disks))
    size = selector(cat.NODE_FILESYSTEM_SIZE, ctx.m(envs, disks))
    return f"max {by(*SE, 'instance', 'mountpoint')} (1 - {available} / ({size} > 0)) > {t}"


# --- a new exception type ------------------------------------------------------------------
NEW_EXCEPTION_WINDOW = "10m"  # "seen now": any sample of the type's series in this window
NEW_EXCEPTION_LOOKBACK = "1w"  # "never before": no sample in the week before that


def _new_exception_types(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    """Exception types with a series now that had none in the week before.

    Series existence, not `increase`: a type's counter series is created by its first
    exception and its first sample already holds 1, which `increase` never counts, so
    one new crash would go unseen. The series set is bounded by the code base's exception
    classes, so the week-long range stays small. Prometheus must itself have watched the
    service a week ago, else on a fresh install every type would look new.
    """
    keys = (*SE, "exception_type")
    sel = selector(cat.HTTP_EXCEPTIONS, ctx.m(envs))
    window, lookback = ctx.w(NEW_EXCEPTION_WINDOW), ctx.w(NEW_EXCEPTION_LOOKBACK)
    now = f"count {by(*keys)} (max_over_time({sel}[{window}]))"
    before = f"count {by(*keys)} (max_over_time({sel}[{lookback}] offset {window}))"
    info = selector(cat.BUILD_INFO, ctx.m(envs))
    history = f"count {by(*SE)} (max_over_time({info}[{window}] offset {lookback}))"
    return f"{now}\nunless on ({', '.join(keys)})\n{before}\nand on ({', '.join(SE)})\n{history}"


# --- latency regression week over week -----------------------------------------------------
REGRESSION_WINDOW = "1h"  # an hour of requests per side: a 5m p95 swings more than 20 % by itself
REGRESSION_BASELINE = "1w"  # the same hour of the week
REGRESSION_MIN_REQUESTS = 100  # requests each hour (now and a week ago) needs to compare
ALL_ROUTES = "all"  # the route_group label when the spec declares no route groups


def regression_groups(spec: Spec) -> list[tuple[str, tuple[str, ...]]]:
    """(route_group label, its routes): the spec's route groups, else the whole service."""
    if spec.route_groups:
        return [(name, tuple(routes)) for name, routes in sorted(spec.route_groups.items())]
    return [(ALL_ROUTES, ())]


def _p95_hour(ctx: Ctx, envs: tuple[str, ...], routes: tuple[str, ...], shift: str) -> str:
    scope: tuple[Matcher, ...] = (promql.in_matcher("route", routes),) if routes else ()
    bucket = selector(f"{cat.HTTP_REQUEST_DURATION.name}_bucket", ctx.m(envs, *scope))
    buckets = f"sum {by(*SE, 'le')} (rate({bucket}[{ctx.w(REGRESSION_WINDOW)}]{shift}))"
    return f"histogram_quantile(0.95, {buckets})"


def _hour_requests(ctx: Ctx, envs: tuple[str, ...], routes: tuple[str, ...], shift: str) -> str:
    scope: tuple[Matcher, ...] = (promql.in_matcher("route", routes),) if routes else ()
    count = selector(f"{cat.HTTP_REQUEST_DURATION.name}_count", ctx.m(envs, *scope))
    return f"sum {by(*SE)} (increase({count}[{ctx.w(REGRESSION_WINDOW)}]{shift}))"


def _latency_regression(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    """p95 of the last hour over the same hour a week before, per route group.

    Both hours need REGRESSION_MIN_REQUESTS requests: a quiet hour's p95 is one slow
    request. Each group is labelled `route_group` by `label_replace`, so one rule covers them all.
    """
    shift = f" offset {ctx.w(REGRESSION_BASELINE)}"
    on = f"and on ({', '.join(SE)})"
    terms = []
    for name, routes in regression_groups(ctx.spec):
        ratio = f"{_p95_hour(ctx, envs, routes, '')}\n/\n{_p95_hour(ctx, envs, routes, shift)}\n> {t}"
        floor = (
            f"{on}\n{_hour_requests(ctx, envs, routes, '')} >= {REGRESSION_MIN_REQUESTS}\n"
            f"{on}\n{_hour_requests(ctx, envs, routes, shift)} >= {REGRESSION_MIN_REQUESTS}"
        )
        terms.append(f'label_replace(\n{ratio}\n{floor},\n"route_group", {promql.quote(name)}, "", ""\n)')
    return "\nor\n".join(terms)


# --- traffic floors: how many events a ratio or quantile alert is computed from ----------
TrafficBuilder = Callable[[Ctx, tuple[str, ...]], str]


def _http_traffic(ctx: Ctx, envs: tuple[str, ...]) -> str:
    return f"sum {by(*SE)} (increase({selector(cat.HTTP_REQUESTS, ctx.m(envs))}[{ctx.w()}]))"


def _latency_traffic(ctx: Ctx, envs: tuple[str, ...]) -> str:
    count = selector(f"{cat.HTTP_REQUEST_DURATION.name}_count", ctx.m(envs))
    return f"sum {by(*SE)} (increase({count}[{ctx.w()}]))"


def _page_views(signal: cat.Signal) -> TrafficBuilder:
    def build(ctx: Ctx, envs: tuple[str, ...]) -> str:
        count = selector(f"{signal.name}_count", ctx.m(envs))
        return f"sum {by(*SE, 'page')} (increase({count}[{ctx.w()}]))"

    return build


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
    "workflow_stale": Expression(_workflow_stale, (cat.WORKFLOW_SAMPLE_AGE,)),
    "llm_cost": Expression(_cost, (cat.LLM_COST,)),
    "llm_unpriced": Expression(_unpriced, (cat.LLM_UNPRICED_CALLS,)),
    "health": Expression(_health, (cat.HEALTH_CHECK_UP,)),
    "telemetry_missing": Expression(_telemetry, (cat.BUILD_INFO,)),
    "service_down": Expression(_service_down, (cat.UP,)),
    "instance_down": Expression(_instance_down, (cat.UP,)),
    "celery_workers_down": Expression(_celery_workers_down, (cat.UP,)),
    "probe_down": Expression(_probe_down, (cat.PROBE_SUCCESS,)),
    "tls_expiry": Expression(_tls_expiry, (cat.PROBE_TLS_EXPIRY_SECONDS,)),
    "scheduler_lag": Expression(_scheduler_lag, (cat.SERVER_SCHEDULER_LAG_SECONDS,)),
    "outbox_depth": Expression(_outbox_depth, (cat.SERVER_OUTBOX_DEPTH,)),
    "usage_quiet": Expression(_usage_quiet, (cat.USAGE_EVENTS,)),
    "usage_failures": Expression(
        _usage_failures, (cat.USAGE_EVENTS,), Traffic(_usage_outcome_traffic, (*SE, "event"), "events")
    ),
    "feedback": Expression(_feedback, (cat.USAGE_EVENTS,)),
    "usage_dropped": Expression(_usage_dropped, (cat.USAGE_EVENTS_DROPPED,)),
    "auth_failures": Expression(
        _failure_ratio(cat.AUTH_ATTEMPTS, AUTH_FAILED, ()),
        (cat.AUTH_ATTEMPTS,),
        Traffic(_count_traffic(cat.AUTH_ATTEMPTS, ()), events="sign-in attempts"),
    ),
    "email_failures": Expression(
        _failure_ratio(cat.DEPENDENCY_CALLS, DEPENDENCY_FAILED, EMAIL),
        (cat.DEPENDENCY_CALLS,),
        Traffic(_count_traffic(cat.DEPENDENCY_CALLS, EMAIL), events="email sends"),
    ),
    "blob_storage_failures": Expression(
        _failure_ratio(cat.DEPENDENCY_CALLS, DEPENDENCY_FAILED, BLOB_STORAGE),
        (cat.DEPENDENCY_CALLS,),
        Traffic(_count_traffic(cat.DEPENDENCY_CALLS, BLOB_STORAGE), events="storage calls"),
    ),
    "http_client_failures": Expression(
        _failure_ratio(cat.HTTP_CLIENT_REQUESTS, ("status_code", "=~", BAD_STATUS), (), ("host",)),
        (cat.HTTP_CLIENT_REQUESTS,),
        Traffic(_count_traffic(cat.HTTP_CLIENT_REQUESTS, (), ("host",)), (*SE, "host"), "outbound requests"),
    ),
    "lcp": Expression(
        _vital(cat.WEB_VITALS_LCP),
        (cat.WEB_VITALS_LCP,),
        Traffic(_page_views(cat.WEB_VITALS_LCP), (*SE, "page"), "page views"),
    ),
    "inp": Expression(
        _vital(cat.WEB_VITALS_INP),
        (cat.WEB_VITALS_INP,),
        Traffic(_page_views(cat.WEB_VITALS_INP), (*SE, "page"), "page views"),
    ),
    "cls": Expression(
        _vital(cat.WEB_VITALS_CLS),
        (cat.WEB_VITALS_CLS,),
        Traffic(_page_views(cat.WEB_VITALS_CLS), (*SE, "page"), "page views"),
    ),
    "frontend_errors": Expression(_frontend_errors, (cat.FRONTEND_ERRORS,)),
    "host_cpu": Expression(_host_cpu, (cat.NODE_CPU_SECONDS,)),
    "host_memory": Expression(_host_memory, (cat.NODE_MEMORY_AVAILABLE, cat.NODE_MEMORY_TOTAL)),
    "host_disk": Expression(_host_disk, (cat.NODE_FILESYSTEM_AVAIL, cat.NODE_FILESYSTEM_SIZE)),
    "new_exception_types": Expression(_new_exception_types, (cat.HTTP_EXCEPTIONS, cat.BUILD_INFO)),
    "latency_regression": Expression(_latency_regression, (cat.HTTP_REQUEST_DURATION,)),
}
