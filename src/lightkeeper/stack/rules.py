"""Every alerting and recording rule the spec asks for, as data (no YAML here).

`rule_groups(spec, profile)` is the single source: the rule files, the generated
`promtool` tests, the runbooks and the Alertmanager routing tests all read it (via
`all_alerts`). Every expression is built from catalogue signals; `rate` is always
taken before `sum`, so counter resets on one instance never look like a drop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from lightkeeper import catalogue as cat
from lightkeeper.spec.models import ALERT_FAMILIES, SEVERITIES, SLO, Severity, Spec
from lightkeeper.stack import promql
from lightkeeper.stack import slo as slo_math
from lightkeeper.stack.errors import GenerationError
from lightkeeper.stack.names import (
    DEPLOY_ALERT,
    MAINTENANCE_ALERT,
    WATCHDOG_ALERT,
    Category,
    DashboardKey,
)
from lightkeeper.stack.profile import Profile, get_profile
from lightkeeper.stack.promql import Matcher, by, selector
from lightkeeper.stack.rule_defs import AlertDef, RecordingRule, RuleGroup

SE = ("service", "environment")
WATCHDOG_ENVIRONMENT = "all"  # the Watchdog watches the pipeline, not one environment
RATE_WINDOW = "5m"
COST_WINDOW = "1h"
DEPLOY_WINDOW = "10m"
QUANTILES: tuple[tuple[str, str], ...] = (("p50", "0.5"), ("p95", "0.95"), ("p99", "0.99"))
BAD_STATUS = "5.."


# --- recording-rule names (dashboards may use them too) -----------------------------
def _base(signal: cat.Signal) -> str:
    return signal.base_name


def http_record(level: str, what: str, window: str) -> str:
    """e.g. `service_environment:http_requests:error_ratio_rate5m`; level names the grouping."""
    return f"{level}:{what}{window}"


def requests_rate_record(window: str, level: str = "service_environment") -> str:
    return http_record(level, f"{_base(cat.HTTP_REQUESTS)}:rate", window)


def error_ratio_record(window: str, level: str = "service_environment") -> str:
    return http_record(level, f"{_base(cat.HTTP_REQUESTS)}:error_ratio_rate", window)


def quantile_record(name: str, window: str, level: str = "service_environment") -> str:
    return http_record(level, f"{cat.HTTP_REQUEST_DURATION.name}:{name}_rate", window)


def slo_error_ratio_record(window: str) -> str:
    """Share of bad events over `window`, labels service, environment, slo."""
    return f"slo:sli_error:ratio_rate{window}"


SLO_BUDGET_REMAINING = "slo:error_budget:remaining_ratio"
SLO_OBJECTIVE = "slo:objective:ratio"


# --- the context every expression builder gets --------------------------------------
@dataclass(frozen=True)
class Ctx:
    spec: Spec
    profile: Profile

    @property
    def service(self) -> str:
        return self.spec.service

    def w(self, window: str = RATE_WINDOW) -> str:
        return self.profile.window(window)

    def m(self, envs: tuple[str, ...] = (), *extra: Matcher) -> list[Matcher]:
        found: list[Matcher] = [("service", "=", self.service)]
        if envs:
            found.append(promql.in_matcher("environment", envs))
        found.extend(extra)
        return found


ExprBuilder = Callable[[Ctx, tuple[str, ...], str], str]


def _rate(
    ctx: Ctx, signal: cat.Signal, envs: tuple[str, ...], *extra: Matcher, window: str = RATE_WINDOW
) -> str:
    return f"rate({selector(signal, ctx.m(envs, *extra))}[{ctx.w(window)}])"


def _sum_rate(
    ctx: Ctx, signal: cat.Signal, envs: tuple[str, ...], *labels: str, extra: tuple[Matcher, ...] = ()
) -> str:
    return f"sum {by(*SE, *labels)} ({_rate(ctx, signal, envs, *extra)})"


def _error_rate(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"{selector(error_ratio_record(ctx.w()), ctx.m(envs))} > {t}"


def _latency(name: str) -> ExprBuilder:
    def build(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
        return f"{selector(quantile_record(name, ctx.w()), ctx.m(envs))} > {t}"

    return build


def _exceptions(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"{_sum_rate(ctx, cat.HTTP_EXCEPTIONS, envs)} > {t}"


def _in_progress(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"sum {by(*SE, 'instance')} ({selector(cat.HTTP_REQUESTS_IN_PROGRESS, ctx.m(envs))}) > {t}"


def _cpu(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"{_sum_rate(ctx, cat.PROCESS_CPU, envs, 'instance')} > {t}"


def _memory(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"max {by(*SE, 'instance')} ({selector(cat.PROCESS_RESIDENT_MEMORY, ctx.m(envs))}) > {t}"


def _db_pool(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    active = selector(cat.DB_CONNECTIONS_ACTIVE, ctx.m(envs))
    limit = selector(cat.DB_CONNECTIONS_MAX, ctx.m(envs))
    return f"max {by(*SE, 'instance', 'pool')} ({active} / ({limit} > 0)) > {t}"


def _db_errors(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"{_sum_rate(ctx, cat.DB_ERRORS, envs)} > {t}"


def _db_slow(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"{_sum_rate(ctx, cat.DB_SLOW_QUERIES, envs)} > {t}"


def _queue_length(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"max {by(*SE, 'queue')} ({selector(cat.CELERY_QUEUE_LENGTH, ctx.m(envs))}) > {t}"


def _celery_failures(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    failed = _sum_rate(ctx, cat.CELERY_TASKS, envs, "task", extra=(("state", "=", "failed"),))
    done = _sum_rate(ctx, cat.CELERY_TASKS, envs, "task", extra=(("state", "=~", "failed|succeeded"),))
    return f"({failed} / {done}) > {t}"


def _celery_workers(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"max {by(*SE)} ({selector(cat.CELERY_WORKERS_UP, ctx.m(envs))}) < {t}"


def _workflow(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    stuck = selector(cat.WORKFLOW_STUCK_ENTITIES, ctx.m(envs))
    return f"max {by(*SE, 'entity', 'status', 'threshold')} ({stuck}) > {t}"


def _cost(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    rate = f"rate({selector(cat.LLM_COST, ctx.m(envs))}[{ctx.w(COST_WINDOW)}])"
    return f"sum {by(*SE)} ({rate}) * 3600 > {t}"


def _health(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"min {by(*SE, 'check')} ({selector(cat.HEALTH_CHECK_UP, ctx.m(envs))}) == 0"


def _telemetry(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"absent({selector(cat.BUILD_INFO, ctx.m(envs))})"


def _service_down(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"max {by(*SE)} ({selector(cat.UP, ctx.m(envs))}) == 0"


def _instance_down(ctx: Ctx, envs: tuple[str, ...], t: str) -> str:
    return f"max {by(*SE, 'instance')} ({selector(cat.UP, ctx.m(envs))}) == 0"


@dataclass(frozen=True)
class Family:
    """One alert family of `spec.alerts`: its rule, defaults and runbook."""

    key: str
    alert: str
    category: Category
    dashboard: DashboardKey
    for_: str
    defaults: dict[Severity, float]
    build: ExprBuilder
    summary: str
    description: str  # `{t}` is the threshold as written, `{w}` the rate window
    steps: tuple[str, ...]
    per_environment: bool = False  # absent() only sees labels of equality matchers
    unit: str = ""
    thresholdless: bool = False


_CHECK_DEPLOY = "Check whether a deploy or config change just happened (Grafana annotations, CI history)."
_LOGS = "Open the logs for the service and environment in Grafana Explore (Loki) around the start time."

FAMILIES: tuple[Family, ...] = (
    Family(
        "error_rate",
        "HTTPErrorRateHigh",
        "errors",
        "api-performance",
        "5m",
        {"high": 0.05, "critical": 0.25},
        _error_rate,
        "{{ $labels.service }} ({{ $labels.environment }}) answers {{ $value | humanizePercentage }} 5xx",
        "More than {t} of HTTP requests were answered with a 5xx status over the last {w}.",
        (
            _CHECK_DEPLOY,
            "Find the failing routes on the API Performance dashboard (errors by route).",
            _LOGS,
            "Roll back the last deploy if it correlates; otherwise check dependencies (database, queues).",
        ),
        unit="ratio",
    ),
    Family(
        "latency_p95_seconds",
        "HTTPLatencyP95High",
        "latency",
        "api-performance",
        "10m",
        {"medium": 1.0, "high": 2.5},
        _latency("p95"),
        "{{ $labels.service }} ({{ $labels.environment }}) p95 latency is {{ $value | humanizeDuration }}",
        "The 95th percentile of request duration stayed above {t}s for the alert's duration.",
        (
            "Find the slow routes on the API Performance dashboard (p95 by route).",
            "Check database query latency and pool saturation on the Database & Queue dashboard.",
            "Look at a slow trace in Tempo (exemplars or Explore) to see where the time goes.",
            _CHECK_DEPLOY,
        ),
        unit="seconds",
    ),
    Family(
        "latency_p99_seconds",
        "HTTPLatencyP99High",
        "latency",
        "api-performance",
        "10m",
        {"medium": 5.0},
        _latency("p99"),
        "{{ $labels.service }} ({{ $labels.environment }}) p99 latency is {{ $value | humanizeDuration }}",
        "The 99th percentile of request duration stayed above {t}s for the alert's duration.",
        (
            "Find the slow routes on the API Performance dashboard (p99 by route).",
            "Look at the slowest traces in Tempo; check outbound calls and LLM latency.",
            _CHECK_DEPLOY,
        ),
        unit="seconds",
    ),
    Family(
        "exceptions_per_second",
        "UnhandledExceptions",
        "errors",
        "api-performance",
        "5m",
        {"medium": 0.1},
        _exceptions,
        "{{ $labels.service }} ({{ $labels.environment }}) raises "
        "{{ $value | humanize }} unhandled exceptions/s",
        "Unhandled exceptions exceeded {t} per second over the last {w}.",
        ("Open Sentry (or the error logs) for the exception types and stack traces.", _LOGS, _CHECK_DEPLOY),
    ),
    Family(
        "requests_in_progress",
        "RequestsInProgressHigh",
        "saturation",
        "system-health",
        "10m",
        {"medium": 50.0, "high": 100.0},
        _in_progress,
        "{{ $labels.instance }} of {{ $labels.service }} ({{ $labels.environment }}) serves "
        "{{ $value | humanize }} concurrent requests",
        "More than {t} requests were in flight on one instance: workers are saturated or requests hang.",
        (
            "Check latency and slow routes: long requests pile up.",
            "Check outbound dependencies (database pool, LLM APIs) for timeouts.",
            "Scale out the service if traffic grew.",
        ),
    ),
    Family(
        "cpu_utilization",
        "CPUUtilizationHigh",
        "saturation",
        "system-health",
        "15m",
        {"high": 0.9},
        _cpu,
        "{{ $labels.instance }} of {{ $labels.service }} ({{ $labels.environment }}) uses "
        "{{ $value | humanizePercentage }} of a core",
        "Process CPU stayed above {t} cores over {w} windows.",
        (
            "Check request rate: is this load or a hot loop?",
            "Profile the process (py-spy dump) if load is flat.",
            "Scale out or raise CPU limits.",
        ),
    ),
    Family(
        "memory_bytes",
        "MemoryUsageHigh",
        "saturation",
        "system-health",
        "15m",
        {"high": 2147483648.0},
        _memory,
        "{{ $labels.instance }} of {{ $labels.service }} ({{ $labels.environment }}) uses "
        "{{ $value | humanize1024 }}B of memory",
        "Resident memory stayed above {t} bytes.",
        (
            "Check whether memory grows steadily (leak) or with load.",
            "Restart the instance if it nears its limit.",
            "Capture a heap profile before restarting if it is a leak.",
        ),
    ),
    Family(
        "db_pool_utilization",
        "DBPoolSaturated",
        "database",
        "database-queue",
        "10m",
        {"medium": 0.75, "high": 0.9},
        _db_pool,
        "Pool {{ $labels.pool }} of {{ $labels.service }} ({{ $labels.environment }}) is "
        "{{ $value | humanizePercentage }} checked out",
        "More than {t} of the connection pool was in use.",
        (
            "Check for slow queries and long transactions on the Database & Queue dashboard.",
            "Check pg_stat_activity for idle-in-transaction sessions.",
            "Raise pool size only if the database has headroom.",
        ),
        unit="ratio",
    ),
    Family(
        "db_error_rate",
        "DBErrorsHigh",
        "database",
        "database-queue",
        "5m",
        {"medium": 0.1, "high": 1.0},
        _db_errors,
        "{{ $labels.service }} ({{ $labels.environment }}) hits {{ $value | humanize }} database errors/s",
        "Database errors exceeded {t} per second over the last {w}.",
        (
            "Check the error types on the Database & Queue dashboard.",
            "Check the database server's health and logs.",
            _CHECK_DEPLOY,
        ),
    ),
    Family(
        "db_slow_queries_per_second",
        "DBSlowQueries",
        "database",
        "database-queue",
        "15m",
        {"medium": 0.5},
        _db_slow,
        "{{ $labels.service }} ({{ $labels.environment }}) runs {{ $value | humanize }} slow queries/s",
        "Slow queries exceeded {t} per second over the last {w}.",
        (
            "Find the tables and operations on the Database & Queue dashboard.",
            "EXPLAIN ANALYZE the slow statements; check for missing indexes or lock waits.",
        ),
    ),
    Family(
        "celery_queue_length",
        "CeleryQueueBacklog",
        "queue",
        "database-queue",
        "15m",
        {"medium": 100.0, "high": 1000.0},
        _queue_length,
        "Queue {{ $labels.queue }} of {{ $labels.service }} ({{ $labels.environment }}) holds "
        "{{ $value | humanize }} messages",
        "More than {t} messages waited in the queue.",
        (
            "Check that workers are alive and consuming (celery inspect active).",
            "Check task failure and retry rates.",
            "Scale workers if the backlog comes from load.",
        ),
    ),
    Family(
        "celery_failure_rate",
        "CeleryTaskFailureRateHigh",
        "queue",
        "database-queue",
        "10m",
        {"high": 0.1},
        _celery_failures,
        "Task {{ $labels.task }} of {{ $labels.service }} ({{ $labels.environment }}) fails "
        "{{ $value | humanizePercentage }} of the time",
        "More than {t} of finished runs of the task failed over the last {w}.",
        (
            "Read the task's exceptions in Sentry or the worker logs.",
            "Check the dependencies the task calls.",
            _CHECK_DEPLOY,
        ),
        unit="ratio",
    ),
    Family(
        "celery_workers_min",
        "CeleryWorkersMissing",
        "queue",
        "database-queue",
        "5m",
        {"high": 1.0},
        _celery_workers,
        "{{ $labels.service }} ({{ $labels.environment }}) has {{ $value | humanize }} live Celery workers",
        "Fewer than {t} Celery workers answered the last ping.",
        ("Check the worker processes or pods and their logs.", "Check broker connectivity (RabbitMQ/Redis)."),
    ),
    Family(
        "workflow_stuck",
        "WorkflowEntitiesStuck",
        "workflow",
        "database-queue",
        "10m",
        {"medium": 0.0},
        _workflow,
        "{{ $value | humanize }} {{ $labels.entity }} entities stuck in {{ $labels.status }} for more than "
        "{{ $labels.threshold }} ({{ $labels.service }}, {{ $labels.environment }})",
        "More than {t} entities stayed in a processing status past the threshold.",
        (
            "List the stuck entities in the database and look for a common cause.",
            "Check the Celery tasks that move them forward.",
            "Re-queue or fail them once the cause is fixed.",
        ),
    ),
    Family(
        "llm_cost_usd_per_hour",
        "LLMCostRateHigh",
        "cost",
        "usage",
        "30m",
        {},
        _cost,
        "{{ $labels.service }} ({{ $labels.environment }}) spends {{ $value | humanize }} USD/h on LLM calls",
        "LLM spend exceeded {t} USD per hour.",
        (
            "Find the models and operations driving the spend on the Usage dashboard.",
            "Check for retry loops or a prompt that grew.",
            "Apply rate limits or a cheaper model if needed.",
        ),
    ),
    Family(
        "health_check_failing",
        "HealthCheckFailing",
        "errors",
        "system-health",
        "5m",
        {"high": 1.0},
        _health,
        "Readiness check {{ $labels.check }} of {{ $labels.service }} ({{ $labels.environment }}) is failing",
        "A readiness dependency check has been failing.",
        ("Call /health on an instance to read the failing check's error.", "Check the dependency itself."),
        thresholdless=True,
    ),
    Family(
        "telemetry_missing",
        "TelemetryMissing",
        "telemetry",
        "system-health",
        "5m",
        {"high": 1.0},
        _telemetry,
        "No metrics from {{ $labels.service }} ({{ $labels.environment }})",
        "Prometheus has no lightkeeper_build_info series for this environment: the target is gone, "
        "its scrapes fail, or the service lost its instrumentation.",
        (
            "Check Prometheus' targets page for the job.",
            "Check that the service runs and serves /metrics.",
            "Check that lightkeeper.instrument(app) still runs at startup.",
        ),
        per_environment=True,
        thresholdless=True,
    ),
    Family(
        "service_down",
        "ServiceDown",
        "telemetry",
        "system-health",
        "2m",
        {"critical": 1.0},
        _service_down,
        "{{ $labels.service }} ({{ $labels.environment }}) is down: every target fails its scrape",
        "No instance of the service answered Prometheus' scrape.",
        ("Check the process or pods and their restart reason.", _LOGS, _CHECK_DEPLOY),
        thresholdless=True,
    ),
    Family(
        "instance_down",
        "InstanceDown",
        "telemetry",
        "system-health",
        "5m",
        {"high": 1.0},
        _instance_down,
        "{{ $labels.instance }} of {{ $labels.service }} ({{ $labels.environment }}) is down",
        "One instance failed Prometheus' scrape.",
        (
            "Check the instance's process, restarts and logs.",
            "Replace the instance if its host is unhealthy.",
        ),
        thresholdless=True,
    ),
)
FAMILY_BY_KEY: dict[str, Family] = {f.key: f for f in FAMILIES}
assert set(FAMILY_BY_KEY) == set(ALERT_FAMILIES), "every spec alert family needs a rule"


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("_", "-").split("-") if part)


def slo_burn_alert(slo: SLO) -> str:
    return f"{_camel(slo.name)}ErrorBudgetBurn"


def slo_no_data_alert(slo: SLO) -> str:
    return f"{_camel(slo.name)}SLINoData"


# --- thresholds ---------------------------------------------------------------------
def _cost_defaults(spec: Spec) -> dict[Severity, float]:
    """Hourly spend that would exhaust the monthly budget in 15 days (medium) or 6 days (high)."""
    if spec.budgets.llm_monthly_usd is None:
        return {}
    pace = promql.decimal(spec.budgets.llm_monthly_usd) / Decimal(720)
    cents = Decimal("0.01")
    return {"medium": float((pace * 2).quantize(cents)), "high": float((pace * 5).quantize(cents))}


def family_thresholds(spec: Spec, family: Family) -> dict[Severity, dict[str, float]]:
    """severity -> environment -> threshold, after defaults and per-environment overrides."""
    entry = spec.alerts.get(family.key)
    if entry is not None and not entry.enabled:
        return {}
    base: dict[Severity, float] = dict(entry.tiers()) if entry is not None else {}
    if not base:
        base = _cost_defaults(spec) if family.key == "llm_cost_usd_per_hour" else dict(family.defaults)
    result: dict[Severity, dict[str, float]] = {}
    for env_name, env in spec.environments.items():
        tiers = dict(base)
        override = env.thresholds.get(family.key)
        if isinstance(override, dict):
            tiers.update(override)
        elif override is not None:
            if not tiers:
                raise GenerationError(
                    f"environments.{env_name}.thresholds.{family.key} gives one number but {family.key} "
                    f"has no severity to replace; write e.g. {{high: {promql.number(override)}}}"
                )
            least = [s for s in SEVERITIES if s in tiers][-1]
            tiers[least] = override
        for severity, value in tiers.items():
            _check_threshold(family, f"environments.{env_name} / alerts.{family.key}.{severity}", value)
            result.setdefault(severity, {})[env_name] = value
    return {s: result[s] for s in SEVERITIES if s in result}


def _check_threshold(family: Family, where: str, value: float) -> None:
    """Refuse thresholds the rule could never cross, instead of shipping a dead alert."""
    if family.thresholdless:
        return
    if family.unit == "ratio" and not 0 <= value < 1:
        raise GenerationError(
            f"{where} is {promql.number(value)}, but {family.key} is a share between 0 and 1 "
            f"(0.05 means 5 %); write a number below 1"
        )
    top = cat.HTTP_DURATION_BUCKETS[-1]
    if family.unit == "seconds" and value >= top:
        raise GenerationError(
            f"{where} is {promql.number(value)}s, but latency quantiles cannot exceed the largest "
            f"histogram bucket ({promql.number(top)}s), so the alert could never fire; write a smaller number"
        )
    if family.key == "celery_workers_min" and value <= 0:
        raise GenerationError(f"{where} must be at least 1 (it alerts when fewer workers than this answer)")
    if value < 0:
        raise GenerationError(
            f"{where} is negative; thresholds are counts, rates or sizes: write a number >= 0"
        )


def _threshold_groups(
    spec: Spec, by_env: dict[str, float], per_environment: bool
) -> list[tuple[tuple[str, ...], float]]:
    """Environments sharing a threshold; `()` when every environment shares one."""
    if per_environment:
        return [((env,), value) for env, value in sorted(by_env.items())]
    values: dict[str, list[str]] = {}
    for env, value in sorted(by_env.items()):
        values.setdefault(promql.number(value), []).append(env)
    if len(values) == 1 and set(by_env) == set(spec.environments):
        return [((), by_env[next(iter(sorted(by_env)))])]
    return [(tuple(envs), float(v)) for v, envs in sorted(values.items(), key=lambda kv: kv[1])]


def _describe(family: Family, value: float, window: str) -> str:
    if family.unit == "ratio":
        shown = f"{promql.number(promql.decimal(value) * 100)} %"
    else:
        shown = promql.number(value)
    return family.description.format(t=shown, w=window)


def _steps(spec: Spec, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    entry = spec.runbooks.alerts.get(name)
    if entry is not None and entry.steps:
        return tuple(entry.steps)
    return default


def _for(spec: Spec, family: Family, ctx: Ctx) -> str:
    entry = spec.alerts.get(family.key)
    chosen = entry.for_ if entry is not None and entry.for_ else family.for_
    return ctx.w(chosen)


def family_alerts(ctx: Ctx, family: Family) -> list[AlertDef]:
    alerts: list[AlertDef] = []
    for severity, by_env in family_thresholds(ctx.spec, family).items():
        groups = _threshold_groups(ctx.spec, by_env, family.per_environment)
        for envs, value in groups:
            alerts.append(
                AlertDef(
                    name=family.alert,
                    expr=family.build(ctx, envs, promql.number(value)),
                    severity=severity,
                    category=family.category,
                    service=ctx.service,
                    summary=family.summary,
                    description=_describe(family, value, ctx.w()),
                    dashboard=family.dashboard,
                    family=family.key,
                    for_=_for(ctx.spec, family, ctx),
                    runbook_steps=_steps(ctx.spec, family.alert, family.steps),
                    environments=envs,
                    threshold=None if family.thresholdless else value,
                )
            )
    return alerts


# --- meta alerts ----------------------------------------------------------------------
def meta_alerts(ctx: Ctx) -> list[AlertDef]:
    spec = ctx.spec
    build_info = selector(cat.BUILD_INFO, ctx.m())
    versions = f"count {by(*SE, 'version')} (max_over_time({build_info}[{ctx.w(DEPLOY_WINDOW)}]))"
    return [
        AlertDef(
            name=WATCHDOG_ALERT,
            expr="vector(1)",
            severity="low",
            category="meta",
            service=spec.service,
            summary="Alerting pipeline is alive",
            description=(
                "This alert always fires. Route it to a dead man's switch: if it stops arriving, "
                "Prometheus, its rules or the path to Alertmanager are broken."
            ),
            dashboard="system-health",
            family="watchdog",
            runbook_steps=_steps(
                spec,
                WATCHDOG_ALERT,
                (
                    "If the dead man's switch reports the Watchdog missing, check that Prometheus runs.",
                    "Check Prometheus' rule evaluation failures and its Alertmanager connection.",
                    "Check that Alertmanager runs and can reach its receivers.",
                ),
            ),
            environments=(WATCHDOG_ENVIRONMENT,),
        ),
        AlertDef(
            name=DEPLOY_ALERT,
            expr=f"count {by(*SE)} ({versions}) > 1",
            severity="low",
            category="meta",
            service=spec.service,
            summary="{{ $labels.service }} ({{ $labels.environment }}) is being deployed",
            description=(
                f"More than one version reported lightkeeper_build_info within {ctx.w(DEPLOY_WINDOW)}: "
                "a rollout is in progress or just finished. Error and latency alerts are inhibited meanwhile."
            ),
            dashboard="system-health",
            family="deployment",
            runbook_steps=_steps(
                spec,
                DEPLOY_ALERT,
                (
                    "Nothing to do while the rollout proceeds.",
                    "If it stays firing, a rollout is stuck half-way.",
                ),
            ),
        ),
        AlertDef(
            name=MAINTENANCE_ALERT,
            expr=f"max {by(*SE)} ({selector(cat.MAINTENANCE, ctx.m())}) > 0",
            severity="low",
            category="meta",
            service=spec.service,
            summary="Maintenance window open for {{ $labels.service }} ({{ $labels.environment }})",
            description=(
                "The lightkeeper server reports an open maintenance window. Error and latency alerts "
                "are inhibited until it closes."
            ),
            dashboard="system-health",
            family="maintenance",
            runbook_steps=_steps(
                spec,
                MAINTENANCE_ALERT,
                (
                    "Nothing to do during planned maintenance.",
                    "Close the window on the server when work ends.",
                ),
            ),
        ),
    ]


# --- SLOs -----------------------------------------------------------------------------
def slo_routes(spec: Spec, slo: SLO) -> list[str] | None:
    if slo.sli.route_group is not None:
        return list(spec.route_groups[slo.sli.route_group])
    return list(slo.sli.routes) if slo.sli.routes else None


def _slo_matchers(ctx: Ctx, slo: SLO, envs: tuple[str, ...] = ()) -> list[Matcher]:
    routes = slo_routes(ctx.spec, slo)
    extra = [promql.in_matcher("route", routes)] if routes else []
    return ctx.m(envs, *extra)


def slo_total_selector(ctx: Ctx, slo: SLO, envs: tuple[str, ...] = ()) -> str:
    signal = cat.HTTP_REQUESTS if slo.sli.kind == "availability" else cat.HTTP_REQUEST_DURATION
    name = signal.name if signal.kind == "counter" else f"{signal.name}_count"
    return selector(name, _slo_matchers(ctx, slo, envs))


def slo_error_ratio_expr(ctx: Ctx, slo: SLO, window: str) -> str:
    """bad / total over the window itself: a request-weighted ratio, never an average of ratios."""
    base = _slo_matchers(ctx, slo)
    total = f"sum {by(*SE)} (rate({slo_total_selector(ctx, slo)}[{window}]))"
    if slo.sli.kind == "availability":
        bad_sel = selector(cat.HTTP_REQUESTS, [*base, ("status_code", "=~", slo.sli.bad_status)])
        return f"sum {by(*SE)} (rate({bad_sel}[{window}]))\n/\n{total}"
    le = slo_math.latency_le(slo.sli)
    good_sel = selector(f"{cat.HTTP_REQUEST_DURATION.name}_bucket", [*base, ("le", "=", le)])
    good = f"sum {by(*SE)} (rate({good_sel}[{window}]))"
    return f"({total} - {good})\n/\n{total}"


def slo_file(slo: SLO) -> str:
    return f"slo-{slo.name}.yml"


def slo_groups(ctx: Ctx) -> list[RuleGroup]:
    """Per SLO: its error ratios and burn-rate alerts, then a slower group for the whole period."""
    spec = ctx.spec
    groups: list[RuleGroup] = []
    for slo in spec.slos:
        tiers = slo_math.check(slo, spec.prometheus.retention)
        budget = slo_math.error_budget(slo.objective)
        labels = {"slo": slo.name}
        period = ctx.w(slo_math.period_window(slo.period))
        records: list[RecordingRule] = []
        period_records: list[RecordingRule] = []
        for window in slo_math.windows(slo):
            scaled = ctx.w(window)
            rule = RecordingRule(
                slo_error_ratio_record(scaled), slo_error_ratio_expr(ctx, slo, scaled), labels
            )
            (period_records if scaled == period else records).append(rule)
        ratio = selector(slo_error_ratio_record(period), ctx.m((), ("slo", "=", slo.name)))
        period_records.append(
            RecordingRule(SLO_BUDGET_REMAINING, f"1 - ({ratio} / {promql.number(budget)})", labels)
        )
        period_records.append(
            RecordingRule(
                SLO_OBJECTIVE, f"vector({promql.number(1 - budget)})", {**labels, "service": spec.service}
            )
        )
        file = slo_file(slo)
        groups.append(
            RuleGroup(f"{spec.service}-slo-{slo.name}", file, (*records, *slo_alerts(ctx, slo, tiers)))
        )
        groups.append(
            RuleGroup(
                f"{spec.service}-slo-{slo.name}-budget", file, tuple(period_records), interval=ctx.w("1m")
            )
        )
    return groups


def slo_alerts(ctx: Ctx, slo: SLO, tiers: list[slo_math.Tier]) -> list[AlertDef]:
    spec = ctx.spec
    pct = promql.number(slo.objective)
    alerts: list[AlertDef] = []
    name = slo_burn_alert(slo)
    steps = _steps(
        spec,
        name,
        (
            "Open the SLOs & Error Budget dashboard: which windows burn, how much budget is left.",
            "Find the routes and status codes behind the bad events on the API Performance dashboard.",
            _CHECK_DEPLOY,
            "Page tiers: mitigate now (roll back, scale, shed load). Ticket tiers: fix within the week.",
        ),
    )
    for tier in tiers:
        long_w, short_w = ctx.w(tier.long_window), ctx.w(tier.short_window)
        threshold = promql.number(tier.threshold)
        sel = ctx.m((), ("slo", "=", slo.name))
        expr = (
            f"{selector(slo_error_ratio_record(long_w), sel)} > {threshold}\n"
            f"and\n{selector(slo_error_ratio_record(short_w), sel)} > {threshold}"
        )
        if slo.alerting.min_requests:
            requests = f"sum {by(*SE)} (increase({slo_total_selector(ctx, slo)}[{long_w}]))"
            expr += f"\nand on ({', '.join(SE)})\n{requests} >= {slo.alerting.min_requests}"
        alerts.append(
            AlertDef(
                name=name,
                expr=expr,
                severity=tier.severity,
                category="slo",
                service=spec.service,
                summary=(
                    f"{slo.name} SLO ({pct} %) of {{{{ $labels.service }}}} ({{{{ $labels.environment }}}}) "
                    f"burns its error budget {promql.number(tier.factor)}x too fast"
                ),
                description=(
                    f"Over both {long_w} and {short_w} more than {promql.number(tier.threshold * 100)} % of "
                    f"events were bad (burn rate {promql.number(tier.factor)} = "
                    f"{promql.number(tier.budget_share * 100)} % of the {slo.period} budget in {long_w})."
                ),
                dashboard="slos",
                family="slo",
                for_=ctx.w(tier.for_),
                runbook_steps=steps,
                slo=slo.name,
                long_window=long_w,
                short_window=short_w,
                threshold=float(tier.threshold),
            )
        )
    no_data = slo_no_data_alert(slo)
    for env in sorted(spec.environments):
        alerts.append(
            AlertDef(
                name=no_data,
                expr=f"absent({slo_total_selector(ctx, slo, (env,))})",
                severity="medium",
                category="telemetry",
                service=spec.service,
                summary=(
                    f"No events for the {slo.name} SLO of "
                    "{{ $labels.service }} ({{ $labels.environment }})"
                ),
                description=(
                    f"No request counted by the {slo.name} SLI for {ctx.w(slo.alerting.no_data_for)}: "
                    "the SLO cannot be computed. Either no traffic reaches these routes "
                    "or the metrics are missing."
                ),
                dashboard="slos",
                family="slo_no_data",
                for_=ctx.w(slo.alerting.no_data_for),
                runbook_steps=_steps(
                    spec,
                    no_data,
                    (
                        "Check that the SLO's routes still exist (a renamed route template stops the SLI).",
                        "Check that the service is scraped (TelemetryMissing would fire too).",
                        "Low-traffic routes: raise no_data_for or drop the SLO.",
                    ),
                ),
                slo=slo.name,
                environments=(env,),
            )
        )
    return alerts


# --- recording rules for the golden signals ------------------------------------------
def http_recording_rules(ctx: Ctx) -> list[RecordingRule]:
    w = ctx.w()
    rules: list[RecordingRule] = []
    for level, labels in (("service_environment", SE), ("service_environment_route", (*SE, "route"))):
        total = f"sum {by(*labels)} ({_rate(ctx, cat.HTTP_REQUESTS, ())})"
        bad = f"sum {by(*labels)} ({_rate(ctx, cat.HTTP_REQUESTS, (), ('status_code', '=~', BAD_STATUS))})"
        rules.append(RecordingRule(requests_rate_record(w, level), total))
        rules.append(RecordingRule(error_ratio_record(w, level), f"{bad}\n/\n{total}"))
        bucket = f"{cat.HTTP_REQUEST_DURATION.name}_bucket"
        for name, q in QUANTILES:
            buckets = f"sum {by(*labels, 'le')} (rate({selector(bucket, ctx.m())}[{w}]))"
            rules.append(
                RecordingRule(quantile_record(name, w, level), f"histogram_quantile({q}, {buckets})")
            )
    return rules


_FILES: dict[Category, str] = {
    "errors": "golden-signals.yml",
    "latency": "golden-signals.yml",
    "saturation": "saturation.yml",
    "database": "database.yml",
    "queue": "celery.yml",
    "workflow": "workflow.yml",
    "cost": "cost.yml",
    "telemetry": "telemetry.yml",
    "meta": "meta.yml",
}


def rule_groups(spec: Spec, profile: str | Profile | None = None) -> list[RuleGroup]:
    """Every rule group, in a stable order; raises GenerationError on an impossible SLO."""
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    ctx = Ctx(spec, prof)
    groups = [RuleGroup(f"{spec.service}-recording", "recording.yml", tuple(http_recording_rules(ctx)))]
    by_file: dict[str, list[AlertDef]] = {}
    for family in FAMILIES:
        for alert in family_alerts(ctx, family):
            by_file.setdefault(_FILES[alert.category], []).append(alert)
    for alert in meta_alerts(ctx):
        by_file.setdefault(_FILES[alert.category], []).append(alert)
    for file in sorted(by_file):
        groups.append(RuleGroup(f"{spec.service}-{file.removesuffix('.yml')}", file, tuple(by_file[file])))
    groups.extend(slo_groups(ctx))
    return groups


def all_alerts(spec: Spec, profile: str | None = None) -> list[AlertDef]:
    """Every alert the rule files contain, in file order (names repeat across severities)."""
    return [alert for group in rule_groups(spec, profile) for alert in group.alerts]


def all_records(spec: Spec, profile: str | None = None) -> list[RecordingRule]:
    return [rule for group in rule_groups(spec, profile) for rule in group.records]
