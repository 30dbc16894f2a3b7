"""The alert families, loaded from `alert_families.yaml` and checked once at import.

Keeping the families as data (as Sloth keeps its burn-rate windows) lets a reviewer
read every default threshold, duration and runbook step in one file, with no Python in
the way; this module only validates them and answers which families a spec gets.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lightkeeper import catalogue as cat
from lightkeeper.spec.models import ALERT_FAMILIES, Severity, Spec
from lightkeeper.stack.errors import GenerationError
from lightkeeper.stack.names import Category, DashboardKey, node_targets, scrapes_nodes, scrapes_workers
from lightkeeper.stack.rule_exprs import EXPRESSIONS, FEEDBACK_EVENT, Expression, outcome_events

DATA_FILE = "alert_families.yaml"

# Spec features a family may require: an alert over workflow gauges means nothing
# for a service that declares no workflow entities.
FEATURES: dict[str, Callable[[Spec], bool]] = {
    "workflow": lambda spec: bool(spec.workflow),
    "celery_workers": scrapes_workers,
    # The server's probes and outbox exist only where the spec points Prometheus at a server.
    "server": lambda spec: bool(spec.prometheus.server_targets),
    "usage_core": lambda spec: bool(spec.usage.core),
    "feedback": lambda spec: FEEDBACK_EVENT in spec.usage.declared(),
    "usage_outcomes": lambda spec: bool(outcome_events(spec)),
    "node": scrapes_nodes,
}
# Features that hold per environment: the family only gets rules where they do.
ENV_FEATURES: dict[str, Callable[[Spec, str], bool]] = {
    "celery_workers": lambda spec, env: bool(spec.environments[env].celery_targets),
    "node": lambda spec, env: bool(node_targets(spec, env)),
}


class Family(BaseModel):
    """One alert family of `spec.alerts`: its rule, defaults and runbook."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    key: str
    alert: str
    category: Category
    dashboard: DashboardKey
    for_: str = Field(alias="for")
    defaults: dict[Severity, float]
    expr: str
    summary: str
    description: str  # `{t}` is the threshold as written, `{w}` the rate window
    steps: tuple[str, ...]
    requires: (
        Literal["workflow", "celery_workers", "server", "usage_core", "feedback", "usage_outcomes", "node"]
        | None
    ) = None
    per_environment: bool = False
    unit: Literal["", "ratio", "seconds", "score"] = ""  # score: a unitless quantile (CLS)
    thresholdless: bool = False
    min_requests: int | None = Field(default=None, ge=0)  # traffic floor; only for ratios/quantiles

    @field_validator("expr")
    @classmethod
    def _known_expr(cls, v: str) -> str:
        if v not in EXPRESSIONS:
            raise ValueError(f"unknown expr {v!r}; known: {', '.join(sorted(EXPRESSIONS))}")
        return v

    @model_validator(mode="after")
    def _floor_where_traffic(self) -> Family:
        has_traffic = EXPRESSIONS[self.expr].traffic is not None
        if has_traffic != (self.min_requests is not None):
            raise ValueError(
                f"{self.key}: min_requests is given exactly for ratio and quantile expressions "
                f"(expr {self.expr} {'has' if has_traffic else 'has no'} traffic to count)"
            )
        return self

    @property
    def expression(self) -> Expression:
        return EXPRESSIONS[self.expr]


class _DataFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shared_steps: dict[str, str]
    families: tuple[Family, ...]


def load(text: str) -> tuple[dict[str, str], tuple[Family, ...]]:
    """Parse and validate a families file: (shared runbook steps, families in file order)."""
    data = _DataFile.model_validate(yaml.safe_load(text))
    keys = [f.key for f in data.families]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ValueError(f"alert families repeated: {', '.join(repeated)}")
    if set(keys) != set(ALERT_FAMILIES):
        missing = sorted(set(ALERT_FAMILIES) - set(keys))
        extra = sorted(set(keys) - set(ALERT_FAMILIES))
        raise ValueError(f"alert families must match the spec's; missing {missing}, unknown {extra}")
    return data.shared_steps, data.families


SHARED_STEPS, FAMILIES = load(
    resources.files("lightkeeper.stack").joinpath(DATA_FILE).read_text(encoding="utf-8")
)
FAMILY_BY_KEY: dict[str, Family] = {f.key: f for f in FAMILIES}


def is_active(spec: Spec, family: Family) -> bool:
    """Generated only when every signal it reads is emitted and its spec feature is set."""
    if not cat.all_emitted(*family.expression.reads):
        return False
    return family.requires is None or FEATURES[family.requires](spec)


def applies_to(spec: Spec, family: Family, environment: str) -> bool:
    """Whether the family writes rules for this environment (see ENV_FEATURES)."""
    check = ENV_FEATURES.get(family.requires or "")
    return check is None or check(spec, environment)


def traffic_floor(spec: Spec, family: Family) -> int:
    """Events the alert's window needs before it may fire: the spec's value, else the family's."""
    entry = spec.alerts.get(family.key)
    if entry is not None and entry.min_requests is not None:
        if family.min_requests is None:
            raise GenerationError(
                f"alerts.{family.key}.min_requests: {family.key} is not a ratio or quantile, so there is no "
                "traffic to count; remove min_requests (it applies to error_rate, latency_p95_seconds, "
                "latency_p99_seconds and celery_failure_rate)",
                loc=("alerts", family.key, "min_requests"),
            )
        return entry.min_requests
    return family.min_requests or 0


def runbook_steps(spec: Spec, alert: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """The team's own steps from `runbooks.alerts.<alert>.steps`, else the defaults."""
    entry = spec.runbooks.alerts.get(alert)
    if entry is not None and entry.steps:
        return tuple(entry.steps)
    return default
