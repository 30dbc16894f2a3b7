"""Every alerting and recording rule the spec asks for, grouped into rule files.

`rule_groups(spec, profile)` is the single source: the rule files, the generated
`promtool` tests, the runbooks and the Alertmanager routing tests all read it (via
`all_alerts`). The parts live beside it: the alert families as data
(`alert_families.yaml`), their PromQL (`rule_exprs`), thresholds (`thresholds`), the
meta alerts (`meta_rules`) and the SLO rules (`slo_rules`).
"""

from __future__ import annotations

from lightkeeper import catalogue as cat
from lightkeeper.spec.models import Spec
from lightkeeper.stack import promql
from lightkeeper.stack.alert_families import FAMILIES, Family, is_active, runbook_steps, traffic_floor
from lightkeeper.stack.meta_rules import meta_alerts
from lightkeeper.stack.names import Category
from lightkeeper.stack.profile import Profile, get_profile
from lightkeeper.stack.promql import by, selector
from lightkeeper.stack.rule_defs import AlertDef, RecordingRule, RuleGroup
from lightkeeper.stack.rule_exprs import (
    BAD_STATUS,
    QUANTILES,
    SE,
    Ctx,
    error_ratio_record,
    quantile_record,
    rate,
    requests_rate_record,
    with_floor,
)
from lightkeeper.stack.slo_rules import slo_groups
from lightkeeper.stack.thresholds import describe, family_thresholds, threshold_groups

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
    "synthetic": "synthetic.yml",
    "product": "product.yml",
    "dependencies": "dependencies.yml",
    "frontend": "frontend.yml",
}
# Families that read a week of samples get a group of their own: Prometheus evaluates a
# group's rules one after another, so their week-long ranges never delay the golden signals.
WEEK_FILE = "week-over-week.yml"
_FAMILY_FILES: dict[str, str] = {"new_exception_types": WEEK_FILE, "latency_regression_ratio": WEEK_FILE}


def family_alerts(ctx: Ctx, family: Family) -> list[AlertDef]:
    """One alert per severity and group of environments sharing a threshold."""
    entry = ctx.spec.alerts.get(family.key)
    for_ = ctx.w(entry.for_ if entry is not None and entry.for_ else family.for_)
    floor = traffic_floor(ctx.spec, family)
    traffic = family.expression.traffic
    alerts: list[AlertDef] = []
    for severity, by_env in family_thresholds(ctx.spec, family).items():
        for envs, value in threshold_groups(ctx.spec, by_env, family.per_environment):
            expr = family.expression.build(ctx, envs, promql.number(value))
            description = describe(family, value, ctx.w())
            if traffic is not None and floor:
                expr = with_floor(expr, traffic, ctx, envs, floor)
                description += f" It needs at least {floor} {traffic.events} in {ctx.w()} to fire."
            alerts.append(
                AlertDef(
                    name=family.alert,
                    expr=expr,
                    severity=severity,
                    category=family.category,
                    service=ctx.service,
                    summary=family.summary,
                    description=description,
                    dashboard=family.dashboard,
                    family=family.key,
                    for_=for_,
                    runbook_steps=runbook_steps(ctx.spec, family.alert, family.steps),
                    environments=envs,
                    threshold=None if family.thresholdless else value,
                    min_requests=floor if traffic is not None else 0,
                )
            )
    return alerts


def http_recording_rules(ctx: Ctx) -> list[RecordingRule]:
    """Request rate, error ratio and latency quantiles per service and per route."""
    w = ctx.w()
    rules: list[RecordingRule] = []
    for level, labels in (("service_environment", SE), ("service_environment_route", (*SE, "route"))):
        total = f"sum {by(*labels)} ({rate(ctx, cat.HTTP_REQUESTS, ())})"
        bad = f"sum {by(*labels)} ({rate(ctx, cat.HTTP_REQUESTS, (), ('status_code', '=~', BAD_STATUS))})"
        rules.append(RecordingRule(requests_rate_record(w, level), total))
        rules.append(RecordingRule(error_ratio_record(w, level), f"{bad}\n/\n{total}"))
        bucket = f"{cat.HTTP_REQUEST_DURATION.name}_bucket"
        for name, q in QUANTILES:
            buckets = f"sum {by(*labels, 'le')} (rate({selector(bucket, ctx.m())}[{w}]))"
            rules.append(
                RecordingRule(quantile_record(name, w, level), f"histogram_quantile({q}, {buckets})")
            )
    return rules


def rule_groups(spec: Spec, profile: str | Profile | None = None) -> list[RuleGroup]:
    """Every rule group, in a stable order; raises GenerationError on an impossible SLO.

    Families over signals nothing emits yet, or over a feature the spec does not
    declare, are left out (see `alert_families.is_active`).
    """
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    ctx = Ctx(spec, prof)
    groups = [RuleGroup(f"{spec.service}-recording", "recording.yml", tuple(http_recording_rules(ctx)))]
    by_file: dict[str, list[AlertDef]] = {}
    for family in FAMILIES:
        if not is_active(spec, family):
            continue
        for alert in family_alerts(ctx, family):
            by_file.setdefault(_FAMILY_FILES.get(family.key) or _FILES[alert.category], []).append(alert)
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
