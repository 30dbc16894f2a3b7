"""SLOs & Error Budget: one row per SLO with its SLI, remaining budget and burn rates.

Ratios are computed from the raw catalogue counters over the window itself (bad /
total, request-weighted), the same definition as the generated recording rules, so
the dashboard and the alerts agree. The SLO period and the burn-rate window are
dashboard variables (`$slo_period`, `$burn_window`); burn-rate thresholds are the
tier factors from `stack.slo`, computed for each SLO's own period.
"""

from __future__ import annotations

from lightkeeper.slo_math import budget_minutes, period_seconds
from lightkeeper.spec.models import SLO, Spec
from lightkeeper.stack import promql, sli_queries, slo_rules
from lightkeeper.stack import slo as slo_math
from lightkeeper.stack.dashboards import panels as p
from lightkeeper.stack.dashboards import queries as q
from lightkeeper.stack.dashboards.panels import Json, Query
from lightkeeper.stack.names import DashboardKey

KEY: DashboardKey = "slos"
EXTRA_PERIODS = ("7d", "28d", "30d", "90d")


def error_ratio(spec: Spec, slo: SLO, window: str) -> str:
    """Share of bad events for one SLO over `window`, per environment (the rules' own selectors)."""
    events = sli_queries.slo_events(spec, slo)
    scope = sli_queries.variable_scope(events, "$service", "$environment")
    return sli_queries.ratio(events, scope, window, "$service", q.BY_ENV)


def _periods(spec: Spec) -> tuple[list[str], str]:
    own = [slo_math.period_window(s.period) for s in spec.slos]
    values = sorted({*own, *EXTRA_PERIODS}, key=promql.seconds)
    if not own:
        return values, "30d"
    return values, max(own, key=lambda v: (own.count(v), -own.index(v)))


def _windows(spec: Spec) -> tuple[list[str], str]:
    found = {w for s in spec.slos for t in slo_math.resolve_tiers(s) for w in (t.long_window, t.short_window)}
    values = sorted(found or {"1h"}, key=promql.seconds)
    return values, "1h" if "1h" in values else values[0]


def _slo_panels(spec: Spec, slo: SLO) -> list[Json]:
    env = "{{environment}}"
    budget = slo_math.error_budget(slo.objective)
    budget_text = promql.number(budget)
    objective = float(1 - budget)
    tiers = slo_math.resolve_tiers(slo)
    ratio_period = error_ratio(spec, slo, "$slo_period")
    what = sli_queries.slo_events(spec, slo).good_means
    pct = promql.number(slo.objective)
    burn_steps: list[Json] = [{"color": "green", "value": None}]
    for tier in sorted(tiers, key=lambda t: t.factor):
        burn_steps.append({"color": p.SEVERITY_COLORS[tier.severity], "value": float(tier.factor)})
    tier_text = "; ".join(
        f"{t.name}: {promql.number(t.factor)}x over {t.long_window} and {t.short_window} ({t.severity})"
        for t in tiers
    )
    windows = sorted({w for t in tiers for w in (t.long_window, t.short_window)}, key=promql.seconds)
    minutes = budget_minutes(slo.objective, period_seconds(slo.period))
    recorded = promql.selector(
        slo_rules.SLO_BUDGET_REMAINING,
        [("service", "=", "$service"), ("environment", "=~", "$environment"), ("slo", "=", slo.name)],
    )
    remaining = f"sum by (environment) ({recorded})"
    return [
        p.row(f"{slo.name}: {pct} % over {slo.period}"),
        p.stat(
            "SLI over $slo_period",
            [Query(f"1 - ({ratio_period})", env)],
            unit="percentunit",
            decimals=3,
            thresholds=p.fixed_thresholds(("red", None), ("green", objective)),
            description=f"Share of {what}. Objective {pct} %. {slo.description}".strip(),
            w=5,
        ),
        p.stat(
            "Error budget remaining",
            [Query(f"1 - (({ratio_period}) / {budget_text})", env)],
            unit="percentunit",
            decimals=1,
            thresholds=p.fixed_thresholds(("red", None), ("orange", 0.0), ("yellow", 0.25), ("green", 0.5)),
            description=f"1 - bad share / error budget ({budget_text}) over $slo_period;"
            " below 0 the SLO is missed.",
            w=5,
        ),
        p.stat(
            f"Budget left over {slo.period} (minutes)",
            [Query(f"{remaining} * {promql.number(minutes)}", env)],
            unit="m",
            decimals=1,
            thresholds=p.fixed_thresholds(("red", None), ("orange", 0.0), ("green", minutes / 2)),
            description=f"Remaining share of the {promql.number(minutes)}-minute budget over the SLO's own"
            " period, from the recorded budget (what the alerts and the server's /sla/status use).",
            w=4,
        ),
        p.stat(
            "Burn rate over $burn_window",
            [Query(f"({error_ratio(spec, slo, '$burn_window')}) / {budget_text}", env)],
            decimals=2,
            thresholds=p.Thresholds(burn_steps, []),
            description="1 = spending the budget exactly over the period. Tiers: " + tier_text,
            w=5,
        ),
        p.stat(
            "Error ratio over $burn_window",
            [Query(error_ratio(spec, slo, "$burn_window"), env)],
            unit="percentunit",
            decimals=3,
            thresholds=p.fixed_thresholds(("green", None), ("red", float(budget))),
            w=5,
        ),
        p.timeseries(
            "Burn rate per alert window",
            [
                Query(f"({error_ratio(spec, slo, w)}) / {budget_text}", f"{{{{environment}}}} {w}")
                for w in windows
            ],
            description="Each tier fires when both its long and short window burn above its factor. "
            + tier_text,
            thresholds=p.Thresholds(burn_steps, []),
            w=24,
        ),
    ]


def build(spec: Spec) -> Json:
    periods, period = _periods(spec)
    windows, window = _windows(spec)
    panels: list[Json] = []
    for slo in spec.slos:
        panels.extend(_slo_panels(spec, slo))
    if not panels:
        panels.append(p.row("No SLOs defined in lightkeeper.yaml"))
    variables = [
        p.custom_variable(
            "slo_period", "SLO period", periods, period, "Window for the SLI and the remaining error budget"
        ),
        p.custom_variable(
            "burn_window", "Burn-rate window", windows, window, "Window for the burn-rate stat"
        ),
    ]
    return p.dashboard(
        spec,
        KEY,
        panels,
        description=f"Service level objectives of {spec.service}: SLI, budget left, burn rate per window.",
        variables=variables,
    )
