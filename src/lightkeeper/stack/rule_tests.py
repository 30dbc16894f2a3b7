"""`tests/*.test.yml` for `promtool test rules`, generated from the same rule data.

Every alert rule gets a case where it fires and a case where it stays silent (the
Watchdog, which fires by design, only the first); ratio and quantile alerts also a case
where the firing condition holds on too little traffic and they stay silent. Threshold alerts are driven just
above and just below their threshold; SLO alerts walk a healthy baseline, each
burn-rate tier firing on its own, then recovery.

Expected results are computed, not guessed: each case knows the value the rule's
expression will produce, which rules of the same name that value crosses, and (for
SLOs) the request-weighted error ratio over every window at every evaluation, which
`slo_simulator` replays with Prometheus 2.x semantics (closed range [t - w, t], no
extrapolation when counters start at zero with the data). Prometheus
2.42 compares floats exactly and has no `fuzzy_compare`, so value checks use
`round()`, and test values carry at most three significant digits so the `%.4g`
of `humanize` in annotations cannot flip on the last bit.

Everything is counted in *steps* (one input sample and one evaluation per step): a
minute in the default profile, a second in the `test` profile, so the same cases
hold for both.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from lightkeeper import catalogue as cat
from lightkeeper.spec.models import SLO, Spec
from lightkeeper.stack import gotemplate, meta_rules, names, promql, rule_exprs, rules, sli_queries, slo_rules
from lightkeeper.stack import slo as slo_math
from lightkeeper.stack.alert_families import FAMILIES, FAMILY_BY_KEY
from lightkeeper.stack.errors import GenerationError
from lightkeeper.stack.profile import Profile, get_profile
from lightkeeper.stack.rule_defs import AlertDef, RuleGroup
from lightkeeper.stack.rule_exprs import COST_WINDOW, DEPLOY_WINDOW, RATE_WINDOW, error_ratio_record
from lightkeeper.stack.slo_simulator import AmbiguousError, Segment, SimTier, Simulation, Traffic

TEST_DIR = "tests"
RULES_FROM_TESTS = "../prometheus/rules"
REQUESTS_PER_STEP = 1000
SLO_BASELINE_STEPS = 10
USAGE_QUIET_STEP_SECONDS = 900  # CoreUsageQuiet compares with a week ago: its `for:` in one step


# --- values ---------------------------------------------------------------------------
def _sig3(value: Decimal, rounding: str) -> Decimal:
    """`value` with three significant digits, rounded in the given direction."""
    if value == 0:
        return value
    exponent = value.adjusted() - 2
    return value.scaleb(-exponent).quantize(Decimal(1), rounding=rounding).scaleb(exponent).normalize()


def fire_value(alert: AlertDef, unit: str) -> Decimal:
    t = promql.decimal(alert.threshold or 0)
    if unit == "ratio":
        return _sig3((t + 1) / 2, ROUND_FLOOR) if t < Decimal("0.998") else (t + 1) / 2
    return _sig3(t * Decimal("1.5"), ROUND_CEILING) if t > 0 else Decimal(1)


def silent_value(alert: AlertDef) -> Decimal:
    return _sig3(promql.decimal(alert.threshold or 0) * Decimal("0.8"), ROUND_FLOOR)


def values_text(values: list[Decimal | None]) -> str:
    """promtool's expanding notation: runs of equal steps as `a+bxn`, gaps as `_xn`."""
    parts: list[str] = []
    i = 0
    while i < len(values):
        current = values[i]
        if current is None:
            j = i
            while j < len(values) and values[j] is None:
                j += 1
            parts.append(f"_x{j - i}")
            i = j
            continue
        j = i + 1
        step: Decimal | None = None
        while j < len(values):
            nxt = values[j]
            if nxt is None:
                break
            prev = values[j - 1]
            assert prev is not None
            delta = nxt - prev
            if step is None:
                step = delta
            elif delta != step:
                break
            j += 1
        n = j - i - 1
        inc = step if step is not None else Decimal(0)
        sign = "-" if inc < 0 else "+"
        parts.append(f"{promql.number(current)}{sign}{promql.number(abs(inc))}x{n}")
        i = j
    return " ".join(parts)


def counter(per_step: Decimal | float | int, steps: int) -> list[Decimal | None]:
    inc = promql.decimal(per_step)
    return [inc * i for i in range(steps + 1)]


def gauge(value: Decimal | float | int, steps: int) -> list[Decimal | None]:
    return [promql.decimal(value)] * (steps + 1)


def series_text(name: str, labels: dict[str, str]) -> str:
    return promql.selector(name, [(k, "=", v) for k, v in sorted(labels.items())])


# --- cases ------------------------------------------------------------------------------
@dataclass
class Check:
    """What one alert name looks like at one evaluation time."""

    eval_steps: int
    alertname: str
    expected: list[dict[str, Any]]


@dataclass
class Case:
    name: str
    series: list[tuple[str, list[Decimal | None]]]
    checks: list[Check]
    exprs: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Scenario:
    """Series for one environment that make a family's expression equal `value`."""

    series: list[tuple[str, list[Decimal | None]]]
    out_labels: dict[str, str]
    value: float | None
    warmup_steps: int = 0


@dataclass(frozen=True)
class TestCtx:
    spec: Spec
    profile: Profile
    step: int = 0  # seconds per step; 0 = one minute, scaled by the profile

    @property
    def step_seconds(self) -> int:
        return self.step or 60 // self.profile.scale

    @property
    def interval(self) -> str:
        return promql.duration(self.step_seconds)

    def steps(self, window: str) -> int:
        """Whole steps in an already scaled duration."""
        return math.ceil(promql.seconds(window) / self.step_seconds)

    def per_step(self, per_second: Decimal) -> Decimal:
        return per_second * self.step_seconds

    def target_labels(self, env: str) -> dict[str, str]:
        """Labels Prometheus attaches to a scraped series of this environment."""
        instance = self.spec.environments[env].sample_targets()[0]
        return {
            "service": self.spec.service,
            "environment": env,
            "job": f"{self.spec.service}-{env}",
            "instance": instance,
        }


def _se(labels: dict[str, str], *extra: str) -> dict[str, str]:
    keep = ("service", "environment", *extra)
    return {k: v for k, v in labels.items() if k in keep}


def expected_alert(
    spec: Spec, alert: AlertDef, out_labels: dict[str, str], value: float | None
) -> dict[str, Any]:
    from lightkeeper.stack.prometheus import alert_annotations

    labels = {**out_labels, **alert.rule_labels()}
    ann = {k: gotemplate.expand(v, out_labels, value) for k, v in alert_annotations(spec, alert).items()}
    return {"exp_labels": dict(sorted(labels.items())), "exp_annotations": dict(sorted(ann.items()))}


# --- per-family scenarios --------------------------------------------------------------
ScenarioBuilder = Callable[[TestCtx, str, Decimal, int], Scenario]
_ROUTE = "/api/things/{thing_id}"


def _error_rate(volume: Decimal) -> ScenarioBuilder:
    def build(ctx: TestCtx, env: str, v: Decimal, n: int) -> Scenario:
        base = {**ctx.target_labels(env), "method": "GET", "route": _ROUTE}
        name = cat.HTTP_REQUESTS.name
        return Scenario(
            [
                (series_text(name, {**base, "status_code": "200"}), counter(volume * (1 - v), n)),
                (series_text(name, {**base, "status_code": "500"}), counter(volume * v, n)),
            ],
            _se(base),
            float(v),
            ctx.steps(ctx.profile.window(RATE_WINDOW)),
        )

    return build


def histogram_series(
    ctx: TestCtx, env: str, bucket_index: int, n: int, per_step: Decimal | int = 100
) -> list[tuple[str, list[Decimal | None]]]:
    """Every observation in bucket `bucket_index` (0-based over HTTP_DURATION_BUCKETS)."""
    base = {**ctx.target_labels(env), "method": "GET", "route": _ROUTE}
    name = cat.HTTP_REQUEST_DURATION.name
    out: list[tuple[str, list[Decimal | None]]] = []
    for i, bound in enumerate(cat.HTTP_DURATION_BUCKETS):
        rate = per_step if i >= bucket_index else 0
        out.append((series_text(f"{name}_bucket", {**base, "le": promql.le_label(bound)}), counter(rate, n)))
    out.append((series_text(f"{name}_bucket", {**base, "le": "+Inf"}), counter(per_step, n)))
    out.append((series_text(f"{name}_count", base), counter(per_step, n)))
    return out


def _quantile_value(
    bucket_index: int, q: float, bounds: tuple[float, ...] = cat.HTTP_DURATION_BUCKETS
) -> float:
    upper = bounds[bucket_index]
    lower = bounds[bucket_index - 1] if bucket_index > 0 else 0.0
    return lower + (upper - lower) * q


def _latency(q: float) -> Callable[[Decimal], ScenarioBuilder]:
    def at(volume: Decimal) -> ScenarioBuilder:
        def build(ctx: TestCtx, env: str, bucket: Decimal, n: int) -> Scenario:
            index = int(bucket)
            return Scenario(
                histogram_series(ctx, env, index, n, volume),
                _se(ctx.target_labels(env)),
                _quantile_value(index, q),
                ctx.steps(ctx.profile.window(RATE_WINDOW)),
            )

        return build

    return at


def _rate_of(
    signal: cat.Signal, extra: dict[str, str], *keep: str, window: str = RATE_WINDOW
) -> ScenarioBuilder:
    def build(ctx: TestCtx, env: str, v: Decimal, n: int) -> Scenario:
        labels = {**ctx.target_labels(env), **extra}
        return Scenario(
            [(series_text(signal.name, labels), counter(ctx.per_step(v), n))],
            _se(labels, *keep),
            float(v),
            ctx.steps(ctx.profile.window(RATE_WINDOW)),
        )

    return build


def _gauge_of(signal: cat.Signal, extra: dict[str, str], *keep: str) -> ScenarioBuilder:
    def build(ctx: TestCtx, env: str, v: Decimal, n: int) -> Scenario:
        labels = {**ctx.target_labels(env), **extra}
        return Scenario([(series_text(signal.name, labels), gauge(v, n))], _se(labels, *keep), float(v))

    return build


def _db_pool(ctx: TestCtx, env: str, v: Decimal, n: int) -> Scenario:
    labels = {**ctx.target_labels(env), "pool": "default"}
    return Scenario(
        [
            (series_text(cat.DB_CONNECTIONS_ACTIVE.name, labels), gauge(v * 10, n)),
            (series_text(cat.DB_CONNECTIONS_MAX.name, labels), gauge(10, n)),
        ],
        _se(labels, "instance", "pool"),
        float(v),
    )


def _celery_failures(volume: Decimal) -> ScenarioBuilder:
    def build(ctx: TestCtx, env: str, v: Decimal, n: int) -> Scenario:
        labels = {**ctx.target_labels(env), "task": "app.tasks.send_email"}
        name = cat.CELERY_TASKS.name
        return Scenario(
            [
                (series_text(name, {**labels, "state": "failed"}), counter(volume * v, n)),
                (series_text(name, {**labels, "state": "succeeded"}), counter(volume * (1 - v), n)),
                (series_text(name, {**labels, "state": "received"}), counter(volume, n)),
            ],
            _se(labels, "task"),
            float(v),
            ctx.steps(ctx.profile.window(RATE_WINDOW)),
        )

    return build


def _cost(ctx: TestCtx, env: str, v: Decimal, n: int) -> Scenario:
    labels = {**ctx.target_labels(env), "provider": "openai", "model": "gpt-4o", "operation": "chat"}
    per_step = v / 3600 * ctx.step_seconds
    return Scenario(
        [(series_text(cat.LLM_COST.name, labels), counter(per_step, n))],
        _se(labels),
        float(v),
        ctx.steps(ctx.profile.window(COST_WINDOW)),
    )


def _worker_up(ctx: TestCtx, env: str, v: Decimal, n: int) -> list[tuple[str, list[Decimal | None]]]:
    labels = {
        **ctx.target_labels(env),
        "job": names.celery_job(ctx.spec, env),
        names.COMPONENT_LABEL: names.CELERY_COMPONENT,
    }
    return [
        (series_text(cat.UP.name, {**labels, "instance": t}), gauge(v, n))
        for t in sorted(ctx.spec.environments[env].celery_targets)
    ]


def _up(ctx: TestCtx, env: str, v: Decimal, n: int) -> Scenario:
    """The service's targets at `v`; live Celery workers beside them must not hide an outage."""
    out: list[tuple[str, list[Decimal | None]]] = []
    base = ctx.target_labels(env)
    for target in ctx.spec.environments[env].sample_targets():
        out.append((series_text(cat.UP.name, {**base, "instance": target}), gauge(v, n)))
    out.extend(_worker_up(ctx, env, Decimal(1), n))
    out.extend(_node_up(ctx, env, n))
    return Scenario(out, _se(base), float(v))


def _instance_up(ctx: TestCtx, env: str, v: Decimal, n: int) -> Scenario:
    labels = ctx.target_labels(env)
    series = [
        (series_text(cat.UP.name, labels), gauge(v, n)),
        *_worker_up(ctx, env, Decimal(1), n),
        *_node_up(ctx, env, n),
    ]
    return Scenario(series, _se(labels, "instance"), float(v))


def _workers_up(ctx: TestCtx, env: str, v: Decimal, n: int) -> Scenario:
    """Every worker target at `v`, the service itself up."""
    api = (series_text(cat.UP.name, ctx.target_labels(env)), gauge(1, n))
    return Scenario([api, *_worker_up(ctx, env, v, n)], _se(ctx.target_labels(env)), float(v))


def _build_info(ctx: TestCtx, env: str, v: Decimal, n: int) -> Scenario:
    """build_info present everywhere, except in `env` when v is 0 (absent() is per environment)."""
    out: list[tuple[str, list[Decimal | None]]] = []
    for other in sorted(ctx.spec.environments):
        labels = ctx.target_labels(other)
        out.append((series_text(cat.UP.name, labels), gauge(1, n)))
        if v or other != env:
            out.append((series_text(cat.BUILD_INFO.name, {**labels, "version": "1.0.0"}), gauge(1, n)))
    return Scenario(out, {"service": ctx.spec.service, "environment": env}, None)


def _server_gauge(signal: cat.Signal, extra: dict[str, str], keep: str, scale: int = 1) -> ScenarioBuilder:
    """The lightkeeper server's series: its own job and instance, no service labels."""

    def build(ctx: TestCtx, env: str, v: Decimal, n: int) -> Scenario:
        labels = {"job": names.SERVER_JOB, "instance": "lightkeeper:8080", **extra}
        return Scenario(
            [(series_text(signal.name, labels), gauge(v * scale, n))], {keep: labels[keep]}, float(v)
        )

    return build


def _usage_quiet(usual: Decimal) -> ScenarioBuilder:
    """A week and an hour at `usual` events per step, then `v` times that until the end.

    At the last evaluation both the current hour and the same hour a week before lie
    wholly inside one phase, and the drop has held for longer than the alert's `for`.
    """

    def build(ctx: TestCtx, env: str, v: Decimal, n: int) -> Scenario:
        return _usage_quiet_scenario(ctx, env, v, n, usual)

    return build


def _usage_quiet_scenario(ctx: TestCtx, env: str, v: Decimal, n: int, usual: Decimal) -> Scenario:
    week = ctx.steps(ctx.profile.window(rule_exprs.USAGE_QUIET_BASELINE))
    hour = ctx.steps(ctx.profile.window(rule_exprs.USAGE_QUIET_WINDOW))
    labels = {**ctx.target_labels(env), "event": ctx.spec.usage.core[0]}
    values: list[Decimal | None] = []
    total = Decimal(0)
    for i in range(n + 1):
        values.append(total)
        total += usual if i < week + hour else usual * v
    return Scenario(
        [(series_text(cat.USAGE_EVENTS.name, labels), values)],
        _se(labels, "event"),
        float(v),
        week + 2 * hour,
    )


def _ratio(
    signal: cat.Signal, bad: dict[str, str], good: dict[str, str], *keep: str
) -> Callable[[Decimal], ScenarioBuilder]:
    """`v` of `volume` events per step in the `bad` series, the rest in the `good` one."""

    def at(volume: Decimal) -> ScenarioBuilder:
        def build(ctx: TestCtx, env: str, v: Decimal, n: int) -> Scenario:
            base = ctx.target_labels(env)
            return Scenario(
                [
                    (series_text(signal.name, {**base, **bad}), counter(volume * v, n)),
                    (series_text(signal.name, {**base, **good}), counter(volume * (1 - v), n)),
                ],
                _se({**base, **bad}, *keep),
                float(v),
                ctx.steps(ctx.profile.window(RATE_WINDOW)),
            )

        return build

    return at


def _usage_outcomes(volume: Decimal) -> ScenarioBuilder:
    """The first event declaring a failed outcome, failing `v` of the time."""

    def build(ctx: TestCtx, env: str, v: Decimal, n: int) -> Scenario:
        event = rule_exprs.outcome_events(ctx.spec)[0]
        values = ctx.spec.usage.declared()[event][rule_exprs.OUTCOME_LABEL]
        failed = next(o for o in values if o in rule_exprs.FAILED_OUTCOMES)
        good = next((o for o in values if o not in rule_exprs.FAILED_OUTCOMES), "success")
        at = _ratio(
            cat.USAGE_EVENTS, {"event": event, "outcome": failed}, {"event": event, "outcome": good}, "event"
        )
        return at(volume)(ctx, env, v, n)

    return build


_PAGE = "/items/{item_id}"


def _vital(signal: cat.Signal) -> Callable[[Decimal], ScenarioBuilder]:
    """Every page view of one page in bucket `bucket_index` of the vital's own layout."""
    bounds = signal.buckets or ()

    def at(volume: Decimal) -> ScenarioBuilder:
        def build(ctx: TestCtx, env: str, bucket: Decimal, n: int) -> Scenario:
            index = int(bucket)
            base = {**ctx.target_labels(env), "page": _PAGE, "device": "mobile"}
            series: list[tuple[str, list[Decimal | None]]] = []
            for i, bound in enumerate(bounds):
                per_step = volume if i >= index else 0
                le = {**base, "le": promql.le_label(bound)}
                series.append((series_text(f"{signal.name}_bucket", le), counter(per_step, n)))
            series.append((series_text(f"{signal.name}_bucket", {**base, "le": "+Inf"}), counter(volume, n)))
            series.append((series_text(f"{signal.name}_count", base), counter(volume, n)))
            return Scenario(
                series,
                _se(base, "page"),
                _quantile_value(index, float(rule_exprs.WEB_VITALS_QUANTILE), bounds),
                ctx.steps(ctx.profile.window(RATE_WINDOW)),
            )

        return build

    return at


# --- hosts (node-exporter's own job and labels) --------------------------------------------
def node_labels(ctx: TestCtx, env: str) -> dict[str, str]:
    return {
        "service": ctx.spec.service,
        "environment": env,
        "job": names.node_job(ctx.spec, env),
        "instance": names.node_targets(ctx.spec, env)[0],
        names.COMPONENT_LABEL: names.NODE_COMPONENT,
    }


def _host_cpu(ctx: TestCtx, env: str, v: Decimal, n: int) -> Scenario:
    """One CPU busy `v` of the time: idle the rest, the busy share counted as user time."""
    labels = {**node_labels(ctx, env), "cpu": "0"}
    name = cat.NODE_CPU_SECONDS.name
    return Scenario(
        [
            (series_text(name, {**labels, "mode": "idle"}), counter(ctx.per_step(1 - v), n)),
            (series_text(name, {**labels, "mode": "user"}), counter(ctx.per_step(v), n)),
        ],
        _se(labels, "instance"),
        float(v),
        ctx.steps(ctx.profile.window(RATE_WINDOW)),
    )


_GIB = Decimal(2**30)


def _host_memory(ctx: TestCtx, env: str, v: Decimal, n: int) -> Scenario:
    labels = node_labels(ctx, env)
    return Scenario(
        [
            (series_text(cat.NODE_MEMORY_TOTAL.name, labels), gauge(_GIB * 8, n)),
            (series_text(cat.NODE_MEMORY_AVAILABLE.name, labels), gauge(_GIB * 8 * (1 - v), n)),
        ],
        _se(labels, "instance"),
        float(v),
    )


def _host_disk(ctx: TestCtx, env: str, v: Decimal, n: int) -> Scenario:
    """The root filesystem `v` full, beside a full tmpfs that must never count."""
    labels = node_labels(ctx, env)
    root = {**labels, "device": "/dev/sda1", "fstype": "ext4", "mountpoint": "/"}
    run = {**labels, "device": "tmpfs", "fstype": "tmpfs", "mountpoint": "/run"}
    return Scenario(
        [
            (series_text(cat.NODE_FILESYSTEM_SIZE.name, root), gauge(_GIB * 100, n)),
            (series_text(cat.NODE_FILESYSTEM_AVAIL.name, root), gauge(_GIB * 100 * (1 - v), n)),
            (series_text(cat.NODE_FILESYSTEM_SIZE.name, run), gauge(_GIB, n)),
            (series_text(cat.NODE_FILESYSTEM_AVAIL.name, run), gauge(0, n)),
        ],
        _se(root, "instance", "mountpoint"),
        float(v),
    )


def _node_up(ctx: TestCtx, env: str, n: int) -> list[tuple[str, list[Decimal | None]]]:
    """Live node-exporters beside the service: ServiceDown must not count them."""
    if not names.node_targets(ctx.spec, env):
        return []
    return [(series_text(cat.UP.name, node_labels(ctx, env)), gauge(1, n))]


# --- a new exception type, and latency week over week (coarse steps, a week of history) ---
_OLD_EXCEPTION, _NEW_EXCEPTION = "ValueError", "RuntimeError"


def _new_exception(history: bool) -> ScenarioBuilder:
    """Days ago a process raised a known type and restarted; at the last step a type shows up.

    `v` 0: that type is new; 1: the restarted process had raised it too (its series left
    with the process, so only the week-long lookback remembers it). Without `history` the
    service's build_info starts with the exception: a fresh install, nothing to compare.
    Short-lived series also keep promtool's week of evaluations cheap.
    """

    def build(ctx: TestCtx, env: str, v: Decimal, n: int) -> Scenario:
        labels = ctx.target_labels(env)
        exc = {**labels, "route": _ROUTE}
        earlier = range(n // 2, n // 2 + 3)  # a few days ago, for three steps

        def seen(steps: range | tuple[int, ...]) -> list[Decimal | None]:
            return [Decimal(1) if i in steps else None for i in range(n + 1)]

        info: list[Decimal | None] = gauge(1, n) if history else seen((n,))
        name = cat.HTTP_EXCEPTIONS.name
        return Scenario(
            [
                (series_text(cat.BUILD_INFO.name, {**labels, "version": "1.0.0"}), info),
                (series_text(name, {**exc, "exception_type": _OLD_EXCEPTION}), seen((*earlier, n))),
                (
                    series_text(name, {**exc, "exception_type": _NEW_EXCEPTION}),
                    seen((*earlier, n) if v else (n,)),
                ),
            ],
            _se({**exc, "exception_type": _NEW_EXCEPTION}, "exception_type"),
            1.0,
            ctx.steps(ctx.profile.window(rule_exprs.NEW_EXCEPTION_LOOKBACK))
            + ctx.steps(ctx.profile.window(rule_exprs.NEW_EXCEPTION_WINDOW)),
        )

    return build


_REGRESSION_BASE_BUCKET = 5  # (0.075, 0.1]: p95 0.09875 s a week ago


def _regression_bucket(ratio: Decimal, firing: bool) -> int:
    """The bucket whose p95 over the base bucket's is just above (firing) or below `ratio`."""
    base = _quantile_value(_REGRESSION_BASE_BUCKET, 0.95)
    ratios = [_quantile_value(i, 0.95) / base for i in range(len(cat.HTTP_DURATION_BUCKETS))]
    if firing:
        above = [i for i, r in enumerate(ratios) if r > ratio]
        if not above:
            raise GenerationError(f"latency regression threshold {ratio} leaves no bucket above to test with")
        return above[0]
    return [i for i, r in enumerate(ratios) if r < ratio][-1]


def _latency_regression(ctx: TestCtx, env: str, v: Decimal, n: int) -> Scenario:
    """A week and an hour in the base bucket, then in the bucket `v` times slower, or faster."""
    week = ctx.steps(ctx.profile.window(rule_exprs.REGRESSION_BASELINE))
    hour = ctx.steps(ctx.profile.window(rule_exprs.REGRESSION_WINDOW))
    firing = v > 1
    now = _regression_bucket(v, firing)
    group, routes = rule_exprs.regression_groups(ctx.spec)[0]
    base = {**ctx.target_labels(env), "method": "GET", "route": sorted(routes)[0] if routes else _ROUTE}
    name = cat.HTTP_REQUEST_DURATION.name
    volume = Decimal(100)

    def climbing(lowest_then: int, lowest_now: int) -> list[Decimal | None]:
        values: list[Decimal | None] = []
        total = Decimal(0)
        for i in range(n + 1):
            values.append(total)
            total += volume if (lowest_then if i < week + hour else lowest_now) <= 0 else 0
        return values

    series: list[tuple[str, list[Decimal | None]]] = []
    for i, bound in enumerate(cat.HTTP_DURATION_BUCKETS):
        le = {**base, "le": promql.le_label(bound)}
        series.append((series_text(f"{name}_bucket", le), climbing(_REGRESSION_BASE_BUCKET - i, now - i)))
    series.append((series_text(f"{name}_bucket", {**base, "le": "+Inf"}), climbing(0, 0)))
    series.append((series_text(f"{name}_count", base), climbing(0, 0)))
    value = _quantile_value(now, 0.95) / _quantile_value(_REGRESSION_BASE_BUCKET, 0.95)
    return Scenario(series, {**_se(base), "route_group": group}, value, week + 2 * hour)


@dataclass(frozen=True)
class FamilyTest:
    """How to drive one family; `at_volume` builds its scenario at a given events-per-step."""

    build: ScenarioBuilder
    compare: str = ">"  # ">", "<", "==0", "absent"
    at_volume: Callable[[Decimal], ScenarioBuilder] | None = None
    volume: int = 0  # events per step of `build`
    buckets: tuple[float, ...] = cat.HTTP_DURATION_BUCKETS  # quantile families: the histogram's layout


def _floored(
    at_volume: Callable[[Decimal], ScenarioBuilder], volume: int, buckets: tuple[float, ...] | None = None
) -> FamilyTest:
    return FamilyTest(
        at_volume(Decimal(volume)),
        at_volume=at_volume,
        volume=volume,
        buckets=buckets or cat.HTTP_DURATION_BUCKETS,
    )


def _vital_test(signal: cat.Signal) -> FamilyTest:
    return _floored(_vital(signal), 10, signal.buckets)


_OUTBOUND = {"host": "api.example.com", "method": "GET"}


FAMILY_TESTS: dict[str, FamilyTest] = {
    "error_rate": _floored(_error_rate, REQUESTS_PER_STEP),
    "latency_p95_seconds": _floored(_latency(0.95), 100),
    "latency_p99_seconds": _floored(_latency(0.99), 100),
    "exceptions_per_second": FamilyTest(
        _rate_of(cat.HTTP_EXCEPTIONS, {"route": _ROUTE, "exception_type": "RuntimeError"})
    ),
    "requests_in_progress": FamilyTest(
        _gauge_of(cat.HTTP_REQUESTS_IN_PROGRESS, {"method": "GET", "route": _ROUTE}, "instance")
    ),
    "cpu_utilization": FamilyTest(_rate_of(cat.PROCESS_CPU, {}, "instance")),
    "memory_bytes": FamilyTest(_gauge_of(cat.PROCESS_RESIDENT_MEMORY, {}, "instance")),
    "db_pool_utilization": FamilyTest(_db_pool),
    "db_error_rate": FamilyTest(_rate_of(cat.DB_ERRORS, {"error_type": "OperationalError"})),
    "db_slow_queries_per_second": FamilyTest(
        _rate_of(cat.DB_SLOW_QUERIES, {"operation": "SELECT", "table": "items"})
    ),
    "celery_queue_length": FamilyTest(_gauge_of(cat.CELERY_QUEUE_LENGTH, {"queue": "celery"}, "queue")),
    "celery_failure_rate": _floored(_celery_failures, 100),
    "celery_workers_min": FamilyTest(_gauge_of(cat.CELERY_WORKERS_UP, {}), compare="<"),
    "celery_workers_down": FamilyTest(_workers_up, compare="==0"),
    "workflow_stuck": FamilyTest(
        _gauge_of(
            cat.WORKFLOW_STUCK_ENTITIES,
            {"entity": "item", "status": "processing", "threshold": "30m"},
            "entity",
            "status",
            "threshold",
        )
    ),
    "workflow_sample_stale_seconds": FamilyTest(
        _gauge_of(cat.WORKFLOW_SAMPLE_AGE, {"entity": "content_item"}, "entity")
    ),
    "llm_cost_usd_per_hour": FamilyTest(_cost),
    "llm_unpriced_calls_per_second": FamilyTest(
        _rate_of(cat.LLM_UNPRICED_CALLS, {"provider": "openai", "model": "gpt-9"}, "provider", "model")
    ),
    "health_check_failing": FamilyTest(
        _gauge_of(cat.HEALTH_CHECK_UP, {"check": "database"}, "check"), compare="==0"
    ),
    "telemetry_missing": FamilyTest(_build_info, compare="absent"),
    "service_down": FamilyTest(_up, compare="==0"),
    "instance_down": FamilyTest(_instance_up, compare="==0"),
    "probe_down": FamilyTest(_server_gauge(cat.PROBE_SUCCESS, {"probe": "homepage"}, "probe"), compare="==0"),
    "tls_expiry_days": FamilyTest(
        _server_gauge(cat.PROBE_TLS_EXPIRY_SECONDS, {"probe": "homepage"}, "probe", 86400), compare="<"
    ),
    "server_scheduler_lag_seconds": FamilyTest(
        _server_gauge(cat.SERVER_SCHEDULER_LAG_SECONDS, {}, "instance")
    ),
    "server_outbox_depth": FamilyTest(_server_gauge(cat.SERVER_OUTBOX_DEPTH, {}, "instance")),
    "usage_quiet_ratio": FamilyTest(_usage_quiet(Decimal(100)), compare="<"),
    "usage_failure_ratio": _floored(_usage_outcomes, 100),
    "feedback_reports": FamilyTest(_rate_of(cat.USAGE_EVENTS, {"event": rule_exprs.FEEDBACK_EVENT})),
    "usage_events_dropped": FamilyTest(
        _rate_of(cat.USAGE_EVENTS_DROPPED, {"reason": "unknown_event"}, "reason")
    ),
    "auth_failure_ratio": _floored(
        _ratio(
            cat.AUTH_ATTEMPTS,
            {"method": "password", "outcome": "failure"},
            {"method": "password", "outcome": "success"},
        ),
        100,
    ),
    "email_failure_ratio": _floored(
        _ratio(
            cat.DEPENDENCY_CALLS,
            {"dependency": "email", "operation": "send", "outcome": "server_error"},
            {"dependency": "email", "operation": "send", "outcome": "success"},
        ),
        100,
    ),
    "blob_storage_failure_ratio": _floored(
        _ratio(
            cat.DEPENDENCY_CALLS,
            {"dependency": "s3", "operation": "PutObject", "outcome": "timeout"},
            {"dependency": "s3", "operation": "PutObject", "outcome": "success"},
        ),
        100,
    ),
    "http_client_failure_ratio": _floored(
        _ratio(
            cat.HTTP_CLIENT_REQUESTS,
            {**_OUTBOUND, "status_code": "503"},
            {**_OUTBOUND, "status_code": "200"},
            "host",
        ),
        100,
    ),
    "web_vitals_lcp_p75_seconds": _vital_test(cat.WEB_VITALS_LCP),
    "web_vitals_inp_p75_seconds": _vital_test(cat.WEB_VITALS_INP),
    "web_vitals_cls_p75": _vital_test(cat.WEB_VITALS_CLS),
    "frontend_errors_per_second": FamilyTest(
        _rate_of(cat.FRONTEND_ERRORS, {"page": _PAGE, "error_type": "TypeError"}, "page")
    ),
    "host_cpu_utilization": FamilyTest(_host_cpu),
    "host_memory_utilization": FamilyTest(_host_memory),
    "host_disk_utilization": FamilyTest(_host_disk),
    "new_exception_types": FamilyTest(_new_exception(history=True), compare="==0"),
    "latency_regression_ratio": FamilyTest(_latency_regression),
}
assert set(FAMILY_TESTS) == {f.key for f in FAMILIES}, "every alert family needs a test scenario"


def _crosses(compare: str, value: float, threshold: float | None) -> bool:
    if compare == ">":
        return threshold is not None and value > threshold
    if compare == "<":
        return threshold is not None and value < threshold
    return value == 0  # "==0" and "absent" (value 0 means the series is missing)


def _applies(alert: AlertDef, env: str) -> bool:
    return not alert.environments or env in alert.environments


def _env_for(spec: Spec, alert: AlertDef) -> str:
    return alert.environments[0] if alert.environments else sorted(spec.environments)[0]


def _latency_bucket(
    threshold: float, firing: bool, bounds: tuple[float, ...] = cat.HTTP_DURATION_BUCKETS
) -> int:
    if firing:
        for i in range(1, len(bounds)):
            if bounds[i - 1] >= threshold:
                return i
        raise GenerationError(f"latency threshold {threshold}s leaves no bucket above it to test with")
    below = [i for i, b in enumerate(bounds) if b <= threshold]
    return below[-1] if below else 0


def _builder(ctx: TestCtx, alert: AlertDef, test: FamilyTest, per_window: Decimal | None) -> ScenarioBuilder:
    """The family's scenario at `per_window` events per rate window, else above its floor."""
    if test.at_volume is None or not alert.min_requests:
        return test.build
    window = ctx.steps(ctx.profile.window(RATE_WINDOW))
    if per_window is not None:
        return test.at_volume(per_window / window)
    return test.at_volume(Decimal(max(test.volume, math.ceil(2 * alert.min_requests / window))))


def _driver(alert: AlertDef, test: FamilyTest, firing: bool) -> Decimal:
    family = FAMILY_BY_KEY[alert.family]
    if test.compare in ("==0", "absent"):
        return Decimal(0) if firing else Decimal(1)
    if test.compare == "<":
        t = promql.decimal(alert.threshold or 0)
        if firing:
            return t - 1 if t >= 1 else t / 2
        # a ratio of two rates is not exact: stay clear of the boundary
        return (t + 1) / 2 if family.unit == "ratio" else t
    if family.unit in ("seconds", "score"):
        return Decimal(_latency_bucket(alert.threshold or 0, firing, test.buckets))
    return fire_value(alert, family.unit) if firing else silent_value(alert)


def low_traffic_case(ctx: TestCtx, alert: AlertDef) -> Case | None:
    """The firing condition on a quarter of the traffic floor: silent, nobody is woken."""
    test = FAMILY_TESTS[alert.family]
    if test.at_volume is None or not alert.min_requests:
        return None
    env = _env_for(ctx.spec, alert)
    build = _builder(ctx, alert, test, Decimal(alert.min_requests) / 4)
    driver = _driver(alert, test, firing=True)
    n = build(ctx, env, driver, 1).warmup_steps + ctx.steps(alert.for_) + 2
    scenario = build(ctx, env, driver, n)
    return Case(
        f"{alert.name} {alert.severity} ({env}) stays silent on {promql.number(alert.min_requests / 4)} "
        f"events per window, below min_requests={alert.min_requests}",
        scenario.series,
        [Check(n, alert.name, [])],
    )


def usage_quiet_floor_case(ctx: TestCtx, alert: AlertDef) -> Case:
    """The same drop after an hour that usually sees too few events: silent, a quiet night."""
    hour = ctx.steps(ctx.profile.window(rule_exprs.USAGE_QUIET_WINDOW))
    # just short of the floor, in a number promtool's notation writes exactly
    usual = _sig3(Decimal(rule_exprs.USAGE_QUIET_MIN_EVENTS - 1) / hour, ROUND_FLOOR)
    env = _env_for(ctx.spec, alert)
    driver = _driver(alert, FAMILY_TESTS[alert.family], firing=True)
    probe = _usage_quiet_scenario(ctx, env, driver, 1, usual)
    n = probe.warmup_steps + ctx.steps(alert.for_) + 2
    scenario = _usage_quiet_scenario(ctx, env, driver, n, usual)
    return Case(
        f"{alert.name} {alert.severity} ({env}) stays silent after an hour that usually sees "
        f"{promql.number(usual * hour)} events, below {rule_exprs.USAGE_QUIET_MIN_EVENTS}",
        scenario.series,
        [Check(n, alert.name, [])],
    )


def new_exception_history_case(ctx: TestCtx, alert: AlertDef) -> Case:
    """A type first seen when Prometheus first sees the service: a fresh install, silent."""
    env = _env_for(ctx.spec, alert)
    build = _new_exception(history=False)
    n = build(ctx, env, Decimal(0), 1).warmup_steps + 2
    return Case(
        f"{alert.name} ({env}) stays silent when Prometheus has no week of history for the service",
        build(ctx, env, Decimal(0), n).series,
        [Check(n, alert.name, [])],
    )


def regression_floor_case(ctx: TestCtx, alert: AlertDef) -> Case:
    """The firing slowdown on one request per step, fewer than REGRESSION_MIN_REQUESTS an hour: silent.

    One whole request per step keeps every counter whole (see `whole_counts`).
    """
    env = _env_for(ctx.spec, alert)
    driver = _driver(alert, FAMILY_TESTS[alert.family], firing=True)
    n = _latency_regression(ctx, env, driver, 1).warmup_steps + ctx.steps(alert.for_) + 2
    hour = ctx.steps(ctx.profile.window(rule_exprs.REGRESSION_WINDOW))
    per_step = Decimal(1)
    assert per_step * hour < rule_exprs.REGRESSION_MIN_REQUESTS, "steps too fine for a low-traffic case"
    scale = per_step / 100  # the scenario's own volume
    series = [
        (name, [None if x is None else x * scale for x in values])
        for name, values in _latency_regression(ctx, env, driver, n).series
    ]
    return Case(
        f"{alert.name} {alert.severity} ({env}) stays silent on {promql.number(per_step * hour)} requests "
        f"an hour, below {rule_exprs.REGRESSION_MIN_REQUESTS}",
        series,
        [Check(n, alert.name, [])],
    )


# Families that compare with a week ago: (file suffix, seconds per step, their third case).
# Each step is one evaluation of every rule in the file, so the coarsest step the
# family's windows allow keeps promtool fast: a step of 30m still puts one sample in
# NewExceptionType's 10m window (the one at the evaluation) and two in the regression's
# hour-long rate windows; CoreUsageQuiet's step is its `for:`.
WEEK_FAMILIES: dict[str, tuple[str, int, Callable[[TestCtx, AlertDef], Case]]] = {
    "usage_quiet_ratio": ("usage-quiet", USAGE_QUIET_STEP_SECONDS, usage_quiet_floor_case),
    "new_exception_types": ("new-exception", 1800, new_exception_history_case),
    "latency_regression_ratio": ("latency-regression", 1800, regression_floor_case),
}


def family_case(ctx: TestCtx, alert: AlertDef, siblings: list[AlertDef], firing: bool) -> Case:
    test = FAMILY_TESTS[alert.family]
    build = _builder(ctx, alert, test, None)
    env = _env_for(ctx.spec, alert)
    driver = _driver(alert, test, firing)
    for_steps = ctx.steps(alert.for_)
    probe = build(ctx, env, driver, 1)
    n = probe.warmup_steps + for_steps + 2
    scenario = build(ctx, env, driver, n)
    measured = 0.0 if test.compare in ("==0", "absent") and firing else (scenario.value or 0.0)
    if test.compare == "absent":
        measured = 0.0 if firing else 1.0
    expected = [
        expected_alert(ctx.spec, s, scenario.out_labels, scenario.value)
        for s in siblings
        if _applies(s, env) and _crosses(test.compare, measured, s.threshold)
    ]
    own = [e for e in expected if _same_rule(e, alert)]
    if bool(own) != firing:
        raise GenerationError(
            f"cannot build a {'firing' if firing else 'silent'} rule test for {alert.name} "
            f"({alert.severity}, threshold {alert.threshold}); adjust the threshold"
        )
    what = "fires" if firing else "stays silent"
    label = f"{alert.name} {alert.severity} ({env}) {what}"
    if scenario.value is not None and test.compare in (">", "<"):
        label += f" at {promql.number(round(scenario.value, 6))}"
    exprs = _family_exprs(ctx, alert, env, scenario, n)
    return Case(label, scenario.series, [Check(n, alert.name, _sort(expected))], exprs)


def _family_exprs(
    ctx: TestCtx, alert: AlertDef, env: str, scenario: Scenario, n: int
) -> list[dict[str, Any]]:
    """Pin the golden-signal recording rules the alerts read, rounded (2.42 compares exactly)."""
    if alert.family != "error_rate" or scenario.value is None:
        return []
    record = error_ratio_record(ctx.profile.window(RATE_WINDOW))
    labels = scenario.out_labels
    return [
        {
            "expr": f"round({promql.selector(record, [('environment', '=', env)])}, 0.001)",
            "eval_time": promql.duration(n * ctx.step_seconds),
            "exp_samples": [
                {
                    "labels": series_text("", labels),
                    "value": _round_to(scenario.value, Decimal("0.001")),
                }
            ],
        }
    ]


def _round_to(value: float, quantum: Decimal) -> float:
    """PromQL round(v, q): floor(v / q + 0.5) * q, computed as Prometheus does."""
    inverse = 1.0 / float(quantum)
    return math.floor(value * inverse + 0.5) / inverse


def _same_rule(expected: dict[str, Any], alert: AlertDef) -> bool:
    labels = expected["exp_labels"]
    return all(labels.get(k) == v for k, v in alert.rule_labels().items())


def _sort(expected: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(expected, key=lambda e: sorted(e["exp_labels"].items()))


# --- meta alerts ----------------------------------------------------------------------
def meta_cases(ctx: TestCtx, alerts: list[AlertDef]) -> list[Case]:
    spec = ctx.spec
    env = sorted(spec.environments)[0]
    labels = ctx.target_labels(env)
    cases: list[Case] = []
    by_name = {a.name: a for a in alerts}
    watchdog = by_name[names.WATCHDOG_ALERT]
    cases.append(
        Case(
            "Watchdog fires with no data at all (it never stays silent, by design)",
            [(series_text(cat.UP.name, labels), gauge(0, 2))],
            [Check(1, watchdog.name, [expected_alert(spec, watchdog, {}, None)])],
        )
    )
    deploy = by_name[names.DEPLOY_ALERT]
    if meta_rules.reports_deployments(spec):
        cases.extend(_server_deploy_cases(ctx, deploy, env))
    else:
        cases.extend(_version_deploy_cases(ctx, deploy, labels))
    return _grace_and_maintenance_cases(ctx, cases, by_name, env, labels)


def _server_deploy_cases(ctx: TestCtx, deploy: AlertDef, env: str) -> list[Case]:
    """The server's gauge, as it exposes it (`env`, not `environment`), drives the alert.

    Beside it, an environment the spec does not declare is mid-deploy all along: it must
    never alert for this service.
    """
    server = {"job": names.SERVER_JOB, "instance": "lightkeeper:8080", "component": "api"}
    name = cat.DEPLOYMENTS_IN_PROGRESS.name
    n = 6
    started: list[Decimal | None] = [Decimal(x) for x in (0, 0, 1, 1, 1, 0, 0)]  # start at 2, finish at 5
    other = (series_text(name, {**server, meta_rules.SERVER_ENV_LABEL: "elsewhere"}), gauge(1, n))
    ours = series_text(name, {**server, meta_rules.SERVER_ENV_LABEL: env})
    out = {"environment": env, "component": "api"}
    return [
        Case(
            f"{deploy.name} fires from CI's start report to its finish, only for declared environments",
            [(ours, started), other],
            [
                Check(1, deploy.name, []),
                Check(3, deploy.name, [expected_alert(ctx.spec, deploy, out, 1.0)]),
                Check(n, deploy.name, []),
            ],
        ),
        Case(
            f"{deploy.name} stays silent while no deployment is in progress",
            [(ours, gauge(0, n)), other],
            [Check(n, deploy.name, [])],
        ),
    ]


def _version_deploy_cases(ctx: TestCtx, deploy: AlertDef, labels: dict[str, str]) -> list[Case]:
    """Without a server: two versions reporting at once."""
    spec = ctx.spec
    cases: list[Case] = []
    window = ctx.steps(ctx.profile.window(DEPLOY_WINDOW))
    n = 3 * window
    old = [Decimal(1) if i <= 2 * window else None for i in range(n + 1)]
    new = [Decimal(1) if i >= window + window // 2 else None for i in range(n + 1)]
    v1 = series_text(cat.BUILD_INFO.name, {**labels, "version": "1.0.0"})
    v2 = series_text(cat.BUILD_INFO.name, {**labels, "version": "1.1.0"})
    se = _se(labels)
    cases.append(
        Case(
            f"{deploy.name} fires while two versions report",
            [(v1, old), (v2, new)],
            [
                Check(window, deploy.name, []),
                Check(2 * window, deploy.name, [expected_alert(spec, deploy, se, 2.0)]),
            ],
        )
    )
    cases.append(
        Case(f"{deploy.name} stays silent with one version", [(v1, gauge(1, n))], [Check(n, deploy.name, [])])
    )
    return cases


def _grace_and_maintenance_cases(
    ctx: TestCtx, cases: list[Case], by_name: dict[str, AlertDef], env: str, labels: dict[str, str]
) -> list[Case]:
    """`cases`, then the opt-in and server-driven meta alerts' own, where generated."""
    spec = ctx.spec
    se = _se(labels)
    grace = by_name.get(names.DEPLOY_GRACE_ALERT)
    if grace is not None and spec.inhibition.deploy_grace:
        cases.extend(_grace_cases(ctx, grace, spec.inhibition.deploy_grace, labels))
    maintenance = by_name.get(names.MAINTENANCE_ALERT)
    if maintenance is None:
        return cases  # not generated while nothing emits lightkeeper_maintenance
    server = {"service": spec.service, "environment": env, "job": "lightkeeper-server", "instance": "lk:8080"}
    for value, expected in ((1, [expected_alert(spec, maintenance, se, 1.0)]), (0, [])):
        cases.append(
            Case(
                f"{maintenance.name} {'fires' if value else 'stays silent'} with "
                f"lightkeeper_maintenance={value}",
                [(series_text(cat.MAINTENANCE.name, server), gauge(value, 3))],
                [Check(2, maintenance.name, expected)],
            )
        )
    return cases


def _grace_cases(ctx: TestCtx, grace: AlertDef, duration: str, labels: dict[str, str]) -> list[Case]:
    """Fires once a second version appears, stops after the grace period even if both keep running."""
    g = ctx.steps(ctx.profile.window(duration))
    start = 3 * g  # the old version alone long enough to fill the offset window
    n = start + 2 * g
    v1 = series_text(cat.BUILD_INFO.name, {**labels, "version": "1.0.0"})
    v2 = series_text(cat.BUILD_INFO.name, {**labels, "version": "1.1.0"})
    new: list[Decimal | None] = [Decimal(1) if i >= start else None for i in range(n + 1)]
    fired = [expected_alert(ctx.spec, grace, _se(labels), 1.0)]
    return [
        Case(
            f"{grace.name} fires when a new version appears, and stops after {duration} of a stuck rollout",
            [(v1, gauge(1, n)), (v2, new)],
            [
                Check(start - 1, grace.name, []),
                Check(start + g // 2, grace.name, fired),
                Check(start + g + 1, grace.name, []),
            ],
        ),
        Case(
            f"{grace.name} stays silent with one version",
            [(v1, gauge(1, n))],
            [Check(n, grace.name, [])],
        ),
    ]


def _sim_tiers(ctx: TestCtx, alerts: list[AlertDef]) -> list[SimTier]:
    return [
        SimTier(
            a,
            ctx.steps(a.long_window or "0s"),
            ctx.steps(a.short_window or "0s"),
            ctx.steps(a.for_),
            a.threshold or 0.0,
            ctx.steps(a.keep_firing_for),
        )
        for a in alerts
    ]


def _burn_candidates(tier: SimTier, tiers: list[SimTier]) -> list[Decimal]:
    """Error ratios to try: above this tier's threshold, below the next higher one if possible."""
    t = promql.decimal(tier.threshold)
    higher = sorted(promql.decimal(x.threshold) for x in tiers if x.threshold > tier.threshold)
    out = [t * Decimal("1.3")]
    if higher:
        out.append((t + higher[0]) / 2)
    out.append(t * 2)
    return [_sig3(min(e, (t + 1) / 2), ROUND_CEILING) for e in out]


def whole_counts(volume: Decimal, share: Decimal) -> Decimal:
    """`volume` times a power of ten, so that `volume x share` bad requests per step is whole.

    promtool expands `a+bxn` by repeated float addition: a counter climbing by 18.8 ends
    at 282.00000000000006, and a following flat run written `282` then reads as a counter
    reset (a burst of 282 bad requests that never happened). Whole increments add exactly.
    """
    while (volume * share) != (volume * share).to_integral_value():
        volume *= 10
    return volume


@dataclass
class SloPlan:
    traffic: Traffic
    burst_end: int
    recovered: int
    fired: list[SimTier]
    last: list[SimTier]  # still firing one step before `recovered`: pins when they resolve


def plan_tier(tier: SimTier, tiers: list[SimTier], volume: int, min_requests: int) -> SloPlan:
    """Baseline, a burst that trips `tier` (alone if the tiers allow it), then recovery."""
    fallback: SloPlan | None = None
    drain = max(x.short for x in tiers) + max(x.keep_steps for x in tiers)  # until all resolve
    for diluted in (False, True):
        burst = (tier.long if diluted else tier.short) + tier.for_steps + 2
        for e in _burn_candidates(tier, tiers):
            v = whole_counts(Decimal(volume), e)
            segments = [Segment(SLO_BASELINE_STEPS, v, Decimal(0))]
            if diluted:
                lowest = min(x.threshold for x in tiers)
                huge = (v * burst * e / promql.decimal(lowest) * 10).to_integral_value(ROUND_CEILING)
                segments.append(Segment(1, huge, Decimal(0)))
            segments.append(Segment(burst, v * (1 - e), v * e))
            segments.append(Segment(drain + 2, v, Decimal(0)))
            traffic = Traffic.of(segments)
            end = sum(s.steps for s in segments[:-1])
            sim = Simulation(traffic, tiers, min_requests)
            try:
                fired = sim.firing(end)
                if tier not in fired or sim.firing(SLO_BASELINE_STEPS):
                    continue
                recovered = next(
                    (t for t in range(end + tier.short + 1, traffic.steps + 1) if not sim.firing(t)), None
                )
            except AmbiguousError:
                continue
            if recovered is None:
                continue
            plan = SloPlan(traffic, end, recovered, fired, sim.firing(recovered - 1))
            if fired == [tier]:
                return plan
            fallback = fallback or plan
    if fallback is None:
        raise GenerationError(
            f"cannot build a promtool case where SLO tier {tier.alert.long_window}/{tier.alert.short_window} "
            f"of {tier.alert.slo!r} fires; check its windows and budget_share"
        )
    return fallback


def _slo_series(
    ctx: TestCtx, spec_slo: SLO, env: str, traffic: Traffic
) -> list[tuple[str, list[Decimal | None]]]:
    """Each series a good or a bad event increments (the SLI kind's examples), summed."""
    good_series, bad_series = sli_queries.example_series(ctx.spec, spec_slo, ctx.target_labels(env), env)
    good = [t - b for t, b in zip(traffic.total, traffic.bad, strict=True)]
    out: dict[str, list[Decimal]] = {}
    for events, counts in ((good_series, good), (bad_series, list(traffic.bad))):
        for name, labels in events:
            key = series_text(name, labels)
            out[key] = [a + b for a, b in zip(out.get(key, [Decimal(0)] * len(counts)), counts, strict=True)]
    return [(key, list[Decimal | None](values)) for key, values in out.items()]


def slo_step(ctx: TestCtx, slo: SLO) -> int:
    """Five-minute steps when every window allows (25x fewer samples to scan), else one minute."""
    windows = [promql.seconds(ctx.profile.window(w)) for w in slo_math.windows(slo)]
    common = math.gcd(*windows)
    for candidate in (300 // ctx.profile.scale, 60 // ctx.profile.scale):
        if candidate and common % candidate == 0:
            return candidate
    return common


def slo_cases(ctx: TestCtx, slo: SLO, alerts: list[AlertDef]) -> list[Case]:
    spec = ctx.spec
    env = sorted(spec.environments)[0]
    burn = [a for a in alerts if a.name == slo_rules.slo_burn_alert(slo)]
    tiers = _sim_tiers(ctx, burn)
    min_requests = slo.alerting.min_requests
    shortest = min((t.long for t in tiers), default=1)
    volume = max(REQUESTS_PER_STEP, math.ceil(2 * min_requests / shortest))
    se = {"service": spec.service, "environment": env, "slo": slo.name}
    cases: list[Case] = []
    for tier in tiers:
        plan = plan_tier(tier, tiers, volume, min_requests)
        alone = (
            "on its own"
            if plan.fired == [tier]
            else "(with "
            + ", ".join(f"{x.alert.long_window}/{x.alert.short_window}" for x in plan.fired if x is not tier)
            + ")"
        )
        expected = [expected_alert(spec, x.alert, se, None) for x in plan.fired]
        checks = [
            Check(SLO_BASELINE_STEPS, burn[0].name, []),
            Check(plan.burst_end, burn[0].name, _sort(expected)),
        ]
        if plan.recovered - 1 > plan.burst_end:
            last = [expected_alert(spec, x.alert, se, None) for x in plan.last]
            checks.append(Check(plan.recovered - 1, burn[0].name, _sort(last)))
        checks.append(Check(plan.recovered, burn[0].name, []))
        cases.append(
            Case(
                f"{slo.name}: healthy baseline, {tier.alert.long_window}/{tier.alert.short_window} "
                f"{tier.alert.severity} tier fires {alone}, then recovers",
                _slo_series(ctx, slo, env, plan.traffic),
                checks,
                _budget_exprs(ctx, slo, env, plan.traffic, plan.burst_end),
            )
        )
    low = _low_traffic_case(ctx, slo, env, tiers, min_requests) if min_requests and tiers else None
    if low is not None:
        cases.append(low)
    cases.extend(_no_data_cases(ctx, slo, alerts))
    return cases


def _budget_exprs(ctx: TestCtx, slo: SLO, env: str, traffic: Traffic, t: int) -> list[dict[str, Any]]:
    """The error budget left after the burst, from the whole-period ratio, rounded."""
    period = ctx.steps(ctx.profile.window(slo_math.period_window(slo.period)))
    ratio = traffic.ratio(t, period)
    if ratio is None:
        return []
    budget = float(slo_math.error_budget(slo.objective))
    remaining = 1 - ratio / budget
    labels = {"service": ctx.spec.service, "environment": env, "slo": slo.name}
    sel = promql.selector(slo_rules.SLO_BUDGET_REMAINING, [("slo", "=", slo.name), ("environment", "=", env)])
    return [
        {
            "expr": f"round({sel}, 0.01)",
            "eval_time": promql.duration(t * ctx.step_seconds),
            "exp_samples": [
                {
                    "labels": series_text("", labels),
                    "value": _round_to(remaining, Decimal("0.01")),
                }
            ],
        }
    ]


def _low_traffic_case(
    ctx: TestCtx, slo: SLO, env: str, tiers: list[SimTier], min_requests: int
) -> Case | None:
    """Below min_requests the same burn stays silent: a few errors at night must not page."""
    tier = tiers[0]
    burst = tier.long + tier.for_steps + 2
    volume = (min_requests - 1) // burst
    if volume < 1:
        return None  # min_requests too small to stay under with one request per step
    traffic = Traffic.of([Segment(burst, Decimal(0), Decimal(volume))])
    if Simulation(traffic, tiers, min_requests).firing(traffic.steps):
        return None
    name = slo_rules.slo_burn_alert(slo)
    return Case(
        f"{slo.name}: {volume} requests per step, all failing, stay below min_requests={min_requests}",
        _slo_series(ctx, slo, env, traffic),
        [Check(traffic.steps, name, [])],
    )


def _no_data_cases(ctx: TestCtx, slo: SLO, alerts: list[AlertDef]) -> list[Case]:
    spec = ctx.spec
    cases: list[Case] = []
    for alert in (a for a in alerts if a.name == slo_rules.slo_no_data_alert(slo)):
        env = alert.environments[0]
        n = ctx.steps(alert.for_) + 2
        traffic = Traffic.of([Segment(n, Decimal(REQUESTS_PER_STEP), Decimal(0))])
        others = [e for e in sorted(spec.environments) if e != env]
        present = [s for other in others for s in _slo_series(ctx, slo, other, traffic)]
        out = sli_queries.no_data_labels(spec, slo, env)
        cases.append(
            Case(
                f"{alert.name} ({env}) fires when the SLI has no series",
                present or [(series_text(cat.UP.name, ctx.target_labels(env)), gauge(1, n))],
                [Check(n, alert.name, [expected_alert(spec, alert, out, None)])],
            )
        )
        cases.append(
            Case(
                f"{alert.name} ({env}) stays silent while the SLI has data",
                [*present, *_slo_series(ctx, slo, env, traffic)],
                [Check(n, alert.name, [])],
            )
        )
    return cases


# --- rendering ----------------------------------------------------------------------------
def _test_entry(ctx: TestCtx, case: Case) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": case.name,
        "interval": ctx.interval,
        "input_series": [{"series": s, "values": values_text(v)} for s, v in case.series],
        "alert_rule_test": [
            {
                "eval_time": promql.duration(c.eval_steps * ctx.step_seconds),
                "alertname": c.alertname,
                "exp_alerts": c.expected,
            }
            for c in case.checks
        ],
    }
    if case.exprs:
        entry["promql_expr_test"] = case.exprs
    return entry


def _file(ctx: TestCtx, rule_files: list[str], cases: list[Case]) -> str:
    from lightkeeper.stack import yamltext

    data = {
        "rule_files": [f"{RULES_FROM_TESTS}/{f}" for f in rule_files],
        "evaluation_interval": ctx.interval,
        "tests": [_test_entry(ctx, c) for c in cases],
    }
    return yamltext.dump(data)


TestFile = tuple[TestCtx, list[str], list[Case]]


def test_cases(spec: Spec, profile: Profile, groups: list[RuleGroup]) -> dict[str, TestFile]:
    """Test file name -> (step context, rule files it loads, cases)."""
    ctx = TestCtx(spec, profile)
    alerts = [a for g in groups for a in g.alerts]
    files_of = {a.name: g.file for g in groups for a in g.alerts}
    out: dict[str, TestFile] = {}
    by_name: dict[str, list[AlertDef]] = {}
    for alert in alerts:
        by_name.setdefault(alert.name, []).append(alert)
    for alert in alerts:
        if alert.family not in FAMILY_TESTS:
            continue
        siblings = by_name[alert.name]
        file = files_of[alert.name]
        if alert.family in WEEK_FAMILIES:
            # a week of history: coarse steps in a file of its own keep promtool fast
            suffix, step, extra = WEEK_FAMILIES[alert.family]
            coarse = TestCtx(spec, profile, step // profile.scale)
            entry = out.setdefault(file.replace(".yml", f"-{suffix}.test.yml"), (coarse, [file], []))
            entry[2].append(family_case(coarse, alert, siblings, firing=True))
            entry[2].append(family_case(coarse, alert, siblings, firing=False))
            entry[2].append(extra(coarse, alert))
            continue
        entry = out.setdefault(file.replace(".yml", ".test.yml"), (ctx, ["recording.yml", file], []))
        entry[2].append(family_case(ctx, alert, siblings, firing=True))
        entry[2].append(family_case(ctx, alert, siblings, firing=False))
        low = low_traffic_case(ctx, alert)
        if low is not None:
            entry[2].append(low)
    meta_file = files_of[names.WATCHDOG_ALERT]
    out.setdefault(meta_file.replace(".yml", ".test.yml"), (ctx, [meta_file], []))[2].extend(
        meta_cases(ctx, alerts)
    )
    for slo in spec.slos:
        file = slo_rules.slo_file(slo)
        own = [a for a in alerts if a.slo == slo.name]
        slo_ctx = TestCtx(spec, profile, slo_step(ctx, slo))
        out[file.replace(".yml", ".test.yml")] = (slo_ctx, [file], slo_cases(slo_ctx, slo, own))
    return dict(sorted(out.items()))


def render(spec: Spec, profile: str | Profile | None = None) -> dict[str, str]:
    """`tests/<rule file>.test.yml` for every rule file with alerts."""
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    groups = rules.rule_groups(spec, prof)
    return {
        f"{TEST_DIR}/{name}": _file(ctx, rule_files, cases)
        for name, (ctx, rule_files, cases) in test_cases(spec, prof, groups).items()
    }
