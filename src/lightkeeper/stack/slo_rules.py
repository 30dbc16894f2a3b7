"""SLO rules: error ratios per window, multi-window multi-burn-rate alerts, budget left.

Per SLO, one group evaluates the burn-rate windows and their alerts; a slower group
computes the whole-period ratio, the budget remaining and the objective, which only
dashboards read. The windows and tiers come from `lightkeeper.stack.slo`, where the
same math is checked against the retention before anything is written.
"""

from __future__ import annotations

from lightkeeper import catalogue as cat
from lightkeeper.slo_math import ERROR_RATIO_RECORD_PREFIX
from lightkeeper.spec.models import SLO, Spec
from lightkeeper.stack import promql
from lightkeeper.stack import slo as slo_math
from lightkeeper.stack.alert_families import SHARED_STEPS, runbook_steps
from lightkeeper.stack.promql import Matcher, by, selector
from lightkeeper.stack.rule_defs import AlertDef, RecordingRule, RuleGroup
from lightkeeper.stack.rule_exprs import SE, Ctx


def slo_error_ratio_record(window: str) -> str:
    """Share of bad events over `window`, labels service, environment, slo."""
    return f"{ERROR_RATIO_RECORD_PREFIX}{window}"


SLO_BUDGET_REMAINING = "slo:error_budget:remaining_ratio"
SLO_OBJECTIVE = "slo:objective:ratio"


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("_", "-").split("-") if part)


def slo_burn_alert(slo: SLO) -> str:
    return f"{_camel(slo.name)}ErrorBudgetBurn"


def slo_no_data_alert(slo: SLO) -> str:
    return f"{_camel(slo.name)}SLINoData"


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
        tiers = slo_math.check(slo, spec.prometheus)
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


def keep_firing(ctx: Ctx, tiers: list[slo_math.Tier]) -> dict[str, str]:
    """Tier name -> keep_firing_for: the fastest page tier outlives the slower ones' short windows.

    Alertmanager silences the slower page tiers while the fastest fires (one page per
    burn), but the slower tiers' short windows still hold the burst for up to 30m after
    it ends; kept firing that long, the fast page keeps them silenced until they clear.
    """
    if not ctx.spec.inhibition.faster_burn_silences_slower:
        return {}
    pages = sorted(
        (t for t in tiers if t.severity in ("critical", "high")), key=lambda t: promql.seconds(t.long_window)
    )
    if len(pages) < 2:
        return {}
    longest = max(promql.seconds(t.short_window) for t in pages[1:])
    return {pages[0].name: ctx.w(promql.duration(longest))}


def slo_alerts(ctx: Ctx, slo: SLO, tiers: list[slo_math.Tier]) -> list[AlertDef]:
    spec = ctx.spec
    keep = keep_firing(ctx, tiers)
    pct = promql.number(slo.objective)
    alerts: list[AlertDef] = []
    name = slo_burn_alert(slo)
    steps = runbook_steps(
        spec,
        name,
        (
            "Open the SLOs & Error Budget dashboard: which windows burn, how much budget is left.",
            "Find the routes and status codes behind the bad events on the API Performance dashboard.",
            SHARED_STEPS["check_deploy"],
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
                keep_firing_for=keep.get(tier.name, "0s"),
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
                runbook_steps=runbook_steps(
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
