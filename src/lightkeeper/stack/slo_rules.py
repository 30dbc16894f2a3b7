"""SLO rules: error ratios per window, multi-window multi-burn-rate alerts, budget left.

Per SLO, one group records the last 5 minutes' good and total events, the error ratio
of every window, the budget remaining and the objective, then evaluates the burn-rate
alerts. Windows of a day and more (the 1d/3d ticket tiers, the period) add up the
5-minute counts (`lightkeeper.stack.slo_counts`); shorter ones read the raw counters.
It is one group because the rules of a group run in order at one timestamp, so the
ratios read the counts written a moment before; across groups the order is not fixed
(promtool shuffles it), and a reader could get the previous evaluation's counts. The
windows and tiers come from `lightkeeper.stack.slo`, where the same math is checked
against the retention before anything is written.
"""

from __future__ import annotations

from lightkeeper.slo_math import ERROR_RATIO_RECORD_PREFIX
from lightkeeper.spec.models import SLO, Spec
from lightkeeper.stack import promql, sli_queries, slo_counts
from lightkeeper.stack import slo as slo_math
from lightkeeper.stack.alert_families import SHARED_STEPS, runbook_steps
from lightkeeper.stack.promql import selector
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
    return sli_queries.slo_routes(spec, slo)


def slo_total_selector(ctx: Ctx, slo: SLO, envs: tuple[str, ...] = ()) -> str:
    """Every event the SLI counts, per its kind (`lightkeeper.spec.sli_events`)."""
    return sli_queries.total_selector(ctx.spec, slo, envs)


def slo_error_ratio_expr(ctx: Ctx, slo: SLO, window: str) -> str:
    """bad / total over the window itself: an event-weighted ratio, never an average of ratios."""
    return sli_queries.error_ratio(ctx.spec, slo, window)


def slo_file(slo: SLO) -> str:
    return f"slo-{slo.name}.yml"


def slo_groups(ctx: Ctx) -> list[RuleGroup]:
    """Per SLO one group: the counts, every window's ratio, the budget left, then the alerts."""
    spec = ctx.spec
    groups: list[RuleGroup] = []
    for slo in spec.slos:
        tiers = slo_math.check(slo, spec.prometheus)
        budget = slo_math.error_budget(slo.objective)
        labels = {"slo": slo.name}
        period = ctx.w(slo_math.period_window(slo.period))
        records = slo_counts.count_rules(ctx, slo)
        for window in slo_math.windows(slo):
            scaled = ctx.w(window)
            long = slo_counts.from_counts(ctx, scaled)
            expr = (
                slo_counts.error_ratio(ctx, slo, scaled) if long else slo_error_ratio_expr(ctx, slo, scaled)
            )
            records.append(RecordingRule(slo_error_ratio_record(scaled), expr, labels))
        ratio = selector(slo_error_ratio_record(period), ctx.m((), ("slo", "=", slo.name)))
        records.append(
            RecordingRule(SLO_BUDGET_REMAINING, f"1 - ({ratio} / {promql.number(budget)})", labels)
        )
        records.append(
            RecordingRule(
                SLO_OBJECTIVE, f"vector({promql.number(1 - budget)})", {**labels, "service": spec.service}
            )
        )
        groups.append(
            RuleGroup(
                f"{spec.service}-slo-{slo.name}", slo_file(slo), (*records, *slo_alerts(ctx, slo, tiers))
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
            requests = (
                slo_counts.total_increase(ctx, slo, long_w)
                if slo_counts.from_counts(ctx, long_w)
                else sli_queries.total_increase(ctx.spec, slo, long_w)
            )
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
                expr=sli_queries.no_data(ctx.spec, slo, env),
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
