"""An alert family's thresholds for a spec: defaults, overrides, and the ones refused.

A threshold the rule could never cross (a 150 % error ratio, a p95 above the largest
bucket) is refused here with the spec path to fix, instead of shipping a dead alert.
"""

from __future__ import annotations

from decimal import Decimal

from lightkeeper import catalogue as cat
from lightkeeper.spec.models import SEVERITIES, Severity, Spec
from lightkeeper.stack import promql
from lightkeeper.stack.alert_families import Family, applies_to
from lightkeeper.stack.errors import GenerationError, Loc


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
        if not applies_to(spec, family, env_name):
            continue
        tiers = dict(base)
        override = env.thresholds.get(family.key)
        if isinstance(override, dict):
            tiers.update(override)
        elif override is not None:
            if not tiers:
                raise GenerationError(
                    f"environments.{env_name}.thresholds.{family.key} gives one number but {family.key} "
                    f"has no severity to replace; write e.g. {{high: {promql.number(override)}}}",
                    loc=("environments", env_name, "thresholds", family.key),
                )
            least = [s for s in SEVERITIES if s in tiers][-1]
            tiers[least] = override
        for severity, value in tiers.items():
            loc: Loc = ("alerts", family.key, severity)
            if isinstance(override, dict) and severity in override:
                loc = ("environments", env_name, "thresholds", family.key, severity)
            elif override is not None and not isinstance(override, dict) and severity == least:
                loc = ("environments", env_name, "thresholds", family.key)
            where = f"environments.{env_name} / alerts.{family.key}.{severity}"
            _check_threshold(family, where, value, loc)
            result.setdefault(severity, {})[env_name] = value
    return {s: result[s] for s in SEVERITIES if s in result}


def _check_threshold(family: Family, where: str, value: float, loc: Loc = ()) -> None:
    if family.thresholdless:
        return
    if family.unit == "ratio" and not 0 <= value < 1:
        raise GenerationError(
            f"{where} is {promql.number(value)}, but {family.key} is a share between 0 and 1 "
            f"(0.05 means 5 %); write a number below 1",
            loc=loc,
        )
    top = cat.HTTP_DURATION_BUCKETS[-1]
    if family.unit == "seconds" and value >= top:
        raise GenerationError(
            f"{where} is {promql.number(value)}s, but latency quantiles cannot exceed the largest "
            f"histogram bucket ({promql.number(top)}s), so the alert could never fire; "
            "write a smaller number",
            loc=loc,
        )
    if family.key == "latency_regression_ratio" and value <= 1:
        raise GenerationError(
            f"{where} is {promql.number(value)}, but {family.key} compares with last week: "
            "1.2 alerts at 20 % slower, and 1 or less would alert on a route that got faster",
            loc=loc,
        )
    if family.key == "celery_workers_min" and value <= 0:
        raise GenerationError(
            f"{where} must be at least 1 (it alerts when fewer workers than this answer)", loc=loc
        )
    if value < 0:
        raise GenerationError(
            f"{where} is negative; thresholds are counts, rates or sizes: write a number >= 0", loc=loc
        )


def threshold_groups(
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


def describe(family: Family, value: float, window: str) -> str:
    """The family's description with its threshold as a person writes it (5 %, not 0.05)."""
    if family.unit == "ratio":
        shown = f"{promql.number(promql.decimal(value) * 100)} %"
    else:
        shown = promql.number(value)
    return family.description.format(t=shown, w=window)
