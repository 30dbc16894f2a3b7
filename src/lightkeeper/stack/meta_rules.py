"""Alerts about the alerting itself: the Watchdog, deployments and maintenance windows.

They carry no thresholds from the spec. The Watchdog fires by design (a dead man's
switch). DeploymentInProgress only informs: it silences nothing, because a bad deploy
is the most common cause of incidents. It reads the lightkeeper server's
`deployments_in_progress` (what CI reported) when Prometheus scrapes a server, and
otherwise guesses from two versions reporting at once. With `inhibition.deploy_grace`,
DeploymentGracePeriod fires for at most that long after a new version first reports,
however long the rollout takes, and Alertmanager silences the lower tiers meanwhile.
MaintenanceWindow exists only when Prometheus scrapes a lightkeeper server (the only
source of `lightkeeper_maintenance`).
"""

from __future__ import annotations

from lightkeeper import catalogue as cat
from lightkeeper.spec.models import Spec
from lightkeeper.stack import promql
from lightkeeper.stack.alert_families import runbook_steps
from lightkeeper.stack.names import (
    DEPLOY_ALERT,
    DEPLOY_GRACE_ALERT,
    MAINTENANCE_ALERT,
    SERVER_JOB,
    WATCHDOG_ALERT,
)
from lightkeeper.stack.promql import by, selector
from lightkeeper.stack.rule_defs import AlertDef
from lightkeeper.stack.rule_exprs import DEPLOY_WINDOW, SE, Ctx

WATCHDOG_ENVIRONMENT = "all"  # the Watchdog watches the pipeline, not one environment
SERVER_ENV_LABEL = "env"  # the server's name for the environment (catalogue.DEPLOYMENTS_IN_PROGRESS)
assert SERVER_ENV_LABEL in cat.DEPLOYMENTS_IN_PROGRESS.labels


def meta_alerts(ctx: Ctx) -> list[AlertDef]:
    spec = ctx.spec
    build_info = selector(cat.BUILD_INFO, ctx.m())
    versions = f"count {by(*SE, 'version')} (max_over_time({build_info}[{ctx.w(DEPLOY_WINDOW)}]))"
    alerts = [
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
            runbook_steps=runbook_steps(
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
        _deploy_from_server(ctx) if reports_deployments(spec) else _deploy_from_versions(ctx, versions),
    ]
    if spec.inhibition.deploy_grace:
        alerts.append(_deploy_grace(ctx, spec.inhibition.deploy_grace))
    if has_maintenance_alert(spec):
        alerts.append(_maintenance(ctx))
    return alerts


def has_maintenance_alert(spec: Spec) -> bool:
    """MaintenanceWindow needs a scraped lightkeeper server that exposes the gauge; its
    inhibition rule follows this one answer, so nothing routes or inhibits on an alert
    that is never written."""
    return cat.MAINTENANCE.emitted and bool(spec.prometheus.server_targets)


_NOT_SILENCED = "Alerts are not silenced meanwhile: a bad deploy is the most common cause of incidents."
_DEPLOY_STEPS = (
    "Nothing to do while the rollout proceeds.",
    "If it stays firing, a rollout is stuck half-way.",
)


def reports_deployments(spec: Spec) -> bool:
    """CI reports deployments to a server Prometheus scrapes: its gauge beats any guess."""
    return bool(spec.prometheus.server_targets) and cat.DEPLOYMENTS_IN_PROGRESS.emitted


def deploy_in_progress_expr(ctx: Ctx) -> str:
    """The server's `deployments_in_progress`, its `env` label copied to the rules' `environment`.

    `label_join` of the one label copies it without a regex (no `$1` to escape anywhere
    the expression is templated).

    The server labels by `env` and `component` (what CI reports), and its replicas all
    expose the same rows, hence `max`. Only the spec's environments count: one server may
    take reports for environments this service's rules know nothing about.
    """
    envs = tuple(sorted(ctx.spec.environments))
    gauge = selector(
        cat.DEPLOYMENTS_IN_PROGRESS, [("job", "=", SERVER_JOB), promql.in_matcher(SERVER_ENV_LABEL, envs)]
    )
    renamed = f'label_join({gauge}, "environment", "", "{SERVER_ENV_LABEL}")'
    return f"max by (environment, component) ({renamed}) > 0"


def _deploy_from_server(ctx: Ctx) -> AlertDef:
    return AlertDef(
        name=DEPLOY_ALERT,
        expr=deploy_in_progress_expr(ctx),
        severity="low",
        category="meta",
        service=ctx.spec.service,
        # the server's series carry no `service`: it is the rule's own label, so write it out
        summary=ctx.spec.service + " ({{ $labels.environment }}) is deploying {{ $labels.component }}",
        description="CI reported a deployment start to the lightkeeper server and no finish yet. "
        + _NOT_SILENCED,
        dashboard="deployments",
        family="deployment",
        runbook_steps=runbook_steps(ctx.spec, DEPLOY_ALERT, _DEPLOY_STEPS),
    )


def _deploy_from_versions(ctx: Ctx, versions: str) -> AlertDef:
    return AlertDef(
        name=DEPLOY_ALERT,
        expr=f"count {by(*SE)} ({versions}) > 1",
        severity="low",
        category="meta",
        service=ctx.spec.service,
        summary="{{ $labels.service }} ({{ $labels.environment }}) is being deployed",
        description=(
            f"More than one version reported lightkeeper_build_info within {ctx.w(DEPLOY_WINDOW)}: "
            f"a rollout is in progress or just finished. {_NOT_SILENCED}"
        ),
        dashboard="system-health",
        family="deployment",
        runbook_steps=runbook_steps(ctx.spec, DEPLOY_ALERT, _DEPLOY_STEPS),
    )


def deploy_grace_expr(ctx: Ctx, grace: str) -> str:
    """Versions first seen within `grace` (absent from the `grace` before), while another runs.

    Bounded by construction: `grace` after a version first reports it is in the offset
    window too, so a rollout stuck half-way cannot keep alerts silenced.
    """
    g = ctx.w(grace)
    build_info = selector(cat.BUILD_INFO, ctx.m())
    recent = f"count {by(*SE, 'version')} (max_over_time({build_info}[{g}]))"
    before = f"count {by(*SE, 'version')} (max_over_time({build_info}[{g}] offset {g}))"
    new = f"count {by(*SE)} (\n  {recent}\n  unless on ({', '.join(SE)}, version)\n  {before}\n)"
    return f"{new}\nand on ({', '.join(SE)})\ncount {by(*SE)} ({recent}) > 1"


def _deploy_grace(ctx: Ctx, grace: str) -> AlertDef:
    spec = ctx.spec
    return AlertDef(
        name=DEPLOY_GRACE_ALERT,
        expr=deploy_grace_expr(ctx, grace),
        severity="low",
        category="meta",
        service=spec.service,
        summary="{{ $labels.service }} ({{ $labels.environment }}) deployed a new version: lower tiers muted",
        description=(
            f"A new version first reported within {ctx.w(grace)} while another still runs. High, medium and "
            "low error, latency and SLO alerts are silenced until this resolves; critical alerts and the "
            "fast-burn SLO page are not."
        ),
        dashboard="system-health",
        family="deployment_grace",
        runbook_steps=runbook_steps(
            spec,
            DEPLOY_GRACE_ALERT,
            (
                "Watch the error and latency panels of the API Performance dashboard during the rollout.",
                "Roll back if errors rise: critical alerts still page during the grace period.",
            ),
        ),
    )


def _maintenance(ctx: Ctx) -> AlertDef:
    spec = ctx.spec
    return AlertDef(
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
        runbook_steps=runbook_steps(
            spec,
            MAINTENANCE_ALERT,
            (
                "Nothing to do during planned maintenance.",
                "Close the window on the server when work ends.",
            ),
        ),
    )
