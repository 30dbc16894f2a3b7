"""The data every generator shares: one alert, one recording rule.

Rules, rule tests, runbooks, Alertmanager routing tests and dashboards all read the
same `AlertDef` list (from `lightkeeper.stack.rules.all_alerts`), so an alert can never
exist in one artefact and be missing from another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lightkeeper.spec.models import Severity
from lightkeeper.stack.names import Category, DashboardKey


@dataclass(frozen=True)
class AlertDef:
    """One Prometheus alerting rule, before rendering.

    The same `name` appears several times when an alert has several severities
    (ErrorRate at high and critical) or per-environment thresholds; runbooks group
    by name. `summary` and `description` may hold Prometheus template syntax
    (`{{ $labels.environment }}`, `{{ $value }}`).
    `environments` lists the environments a rule is restricted to; empty means every
    environment, and then the `environment` label comes from the series.
    """

    name: str
    expr: str
    severity: Severity
    category: Category
    service: str
    summary: str
    description: str
    dashboard: DashboardKey
    family: str = ""
    for_: str = "0s"
    keep_firing_for: str = "0s"  # Prometheus keeps the alert firing this long after it clears
    runbook_steps: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()
    slo: str | None = None
    long_window: str | None = None
    short_window: str | None = None
    extra_labels: dict[str, str] = field(default_factory=dict)
    threshold: float | None = None  # the number in `expr` this rule compares against, if any
    min_requests: int = 0  # events the rate window needs before the rule may fire (0 = no floor)

    def rule_labels(self) -> dict[str, str]:
        """The static labels written into the rule (sorted when rendered)."""
        labels = {"severity": self.severity, "category": self.category, "service": self.service}
        if len(self.environments) == 1:
            labels["environment"] = self.environments[0]
        if self.slo is not None:
            labels["slo"] = self.slo
        if self.long_window is not None:
            labels["long_window"] = self.long_window
        if self.short_window is not None:
            labels["short_window"] = self.short_window
        labels.update(self.extra_labels)
        return labels


@dataclass(frozen=True)
class RecordingRule:
    """One Prometheus recording rule."""

    record: str
    expr: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleGroup:
    """One Prometheus rule group, written to `prometheus/rules/<file>`."""

    name: str
    file: str
    rules: tuple[RecordingRule | AlertDef, ...]
    interval: str | None = None

    @property
    def alerts(self) -> tuple[AlertDef, ...]:
        return tuple(r for r in self.rules if isinstance(r, AlertDef))

    @property
    def records(self) -> tuple[RecordingRule, ...]:
        return tuple(r for r in self.rules if isinstance(r, RecordingRule))
