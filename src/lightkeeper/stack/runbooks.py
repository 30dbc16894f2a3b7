"""`runbooks/<AlertName>.md`: one page per alert name, linked from every alert's annotations.

An alert name can have several rules (one per severity, or per environment when the
thresholds differ); the page lists each with its routing and PromQL. First steps come
from `runbooks.alerts.<name>.steps` in the spec, else the rule's own steps, else the
defaults of its category. Prometheus template syntax in summaries is shown as
`<label>` placeholders, since the page is read outside any alert.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import jinja2

from lightkeeper.spec.models import SEVERITIES, Severity, Spec
from lightkeeper.stack import alertmanager, names, promql
from lightkeeper.stack.rule_defs import AlertDef

RUNBOOKS_DIR = "runbooks"
INDEX_PATH = f"{RUNBOOKS_DIR}/README.md"

CAUSES: dict[str, tuple[str, ...]] = {
    "errors": (
        "A deploy or configuration change introduced a bug.",
        "A dependency (database, cache, external API) fails or times out.",
        "Bad input from a client triggers an unhandled path.",
    ),
    "latency": (
        "Slow database queries or lock contention.",
        "A slow or rate-limited external dependency (LLM API, payment provider).",
        "Saturation: too few workers or CPU for the traffic.",
    ),
    "saturation": (
        "Traffic grew beyond the provisioned capacity.",
        "Requests hang on a dependency and pile up.",
        "A leak (memory, file descriptors, connections) in the process.",
    ),
    "database": (
        "Missing index or a query plan change after data growth.",
        "Long transactions or idle-in-transaction sessions holding connections and locks.",
        "The database server itself is overloaded, failing over or out of disk.",
    ),
    "queue": (
        "Workers are down, stuck or too few for the load.",
        "A task fails repeatedly (bug, dependency outage) and is retried.",
        "The broker (Redis, RabbitMQ) is unreachable or full.",
    ),
    "workflow": (
        "The task that moves entities forward fails or is not scheduled.",
        "An external step (webhook, LLM call) never answers.",
        "A code path forgets to update the status on failure.",
    ),
    "cost": (
        "A retry loop or runaway job calls the LLM API repeatedly.",
        "Prompts or outputs grew (more context, longer answers).",
        "A more expensive model was configured.",
    ),
    "telemetry": (
        "The service or one of its instances is down or restarting.",
        "Prometheus cannot reach the target (network, DNS, auth on /metrics).",
        "The instrumentation was removed or the metrics endpoint moved.",
    ),
    "slo": (
        "An incident (errors or latency) is consuming the error budget.",
        "A slow, steady degradation since a recent deploy.",
        "A dependency outage affecting the SLO's routes.",
    ),
    "meta": (
        "Planned work (deploy, maintenance) in progress.",
        "The alerting pipeline itself (Prometheus, Alertmanager) needs attention.",
    ),
    "synthetic": (
        "The probed endpoint is down or answers wrongly (seen from outside, as users see it).",
        "A certificate was not renewed (ACME job failing, manual certificate forgotten).",
        "The lightkeeper server itself is overloaded or cannot reach its notification targets.",
    ),
    "product": (
        "A feature broke without raising errors (a button that does nothing, a failing sign-in).",
        "An attack (credential stuffing) or a bot.",
        "Code uses a usage event or label value the declaration does not allow.",
    ),
    "dependencies": (
        "The provider (email, S3, an external API) has an outage or throttles us.",
        "Credentials expired or were rotated.",
        "A network or DNS problem between the service and the provider.",
    ),
    "frontend": (
        "A front-end release added heavy assets, layout shifts or slow handlers.",
        "A JavaScript error on a page (often after a deploy, or in one browser).",
        "The API behind the page became slower.",
    ),
}

DEFAULT_STEPS: dict[str, tuple[str, ...]] = {
    "errors": (
        "Open the dashboard and find the routes or components with the errors.",
        "Read the error logs and exceptions around the start time (Grafana Explore, Sentry).",
        "Check whether a deploy or config change happened just before; roll back if it did.",
    ),
    "latency": (
        "Open the dashboard and find the slow routes.",
        "Open a slow trace (exemplar or Tempo search) to see where the time goes.",
        "Check database and outbound call latency on the Database & Queue and API dashboards.",
    ),
    "saturation": (
        "Check traffic: is the load real?",
        "Check for hanging dependencies and long requests.",
        "Scale out, or restart a leaking instance after capturing a profile.",
    ),
    "database": (
        "Find the tables and operations involved on the Database & Queue dashboard.",
        "Inspect pg_stat_activity and slow statements (EXPLAIN ANALYZE).",
        "Check the database server's resources and logs.",
    ),
    "queue": (
        "Check worker liveness and logs.",
        "Check task failures and retries on the Database & Queue dashboard.",
        "Scale workers or pause the producer if the backlog keeps growing.",
    ),
    "workflow": (
        "List the stuck entities and look for what they have in common.",
        "Check the tasks that advance them.",
        "Re-queue or fail them once the cause is fixed.",
    ),
    "cost": (
        "Find the model and operation behind the spend on the Usage dashboard.",
        "Look for loops or retries in the logs.",
        "Apply limits or switch to a cheaper model.",
    ),
    "telemetry": (
        "Check Prometheus' targets page for the failing target.",
        "Check that the process runs and serves its metrics endpoint.",
        "Check recent deploys and network changes.",
    ),
    "slo": (
        "Open the SLOs & Error Budget dashboard: which windows burn and how much budget is left.",
        "Find the failing or slow routes on the API Performance dashboard.",
        "Mitigate (roll back, scale, shed load); page tiers now, ticket tiers within the week.",
    ),
    "meta": ("Check the alert's description; no action is needed for planned work.",),
    "synthetic": (
        "Open the lightkeeper server's status page and the probe's last error.",
        "Reproduce from outside the network (curl the probed URL).",
        "Check the lightkeeper server's own logs and metrics if several probes fail at once.",
    ),
    "product": (
        "Open the Usage dashboard and compare with the same hour last week.",
        "Read the logs of the affected flow (sign-in, content creation) around the start time.",
        "Check the last deploy.",
    ),
    "dependencies": (
        "Check the provider's status page.",
        "Read the failing calls' error types in the logs.",
        "Check credentials, quotas and network paths to the provider.",
    ),
    "frontend": (
        "Open the Web performance row of the Usage dashboard and find the page.",
        "Read the browser errors in the logs or Sentry.",
        "Check the last front-end deploy.",
    ),
}

_PROM_TEMPLATE = re.compile(r"\{\{\s*(.*?)\s*\}\}")


# Alerts whose causes are their own, not their category's.
CAUSES_BY_NAME: dict[str, tuple[str, ...]] = {
    names.WATCHDOG_ALERT: (
        "Prometheus is down, or no longer evaluates its rules.",
        "Prometheus cannot reach Alertmanager, or Alertmanager is down.",
        "Alertmanager cannot reach the dead man's switch receiver.",
    ),
    names.DEPLOY_ALERT: (
        "A rollout is in progress: two versions report at once.",
        "A rollout is stuck half-way.",
    ),
    names.DEPLOY_GRACE_ALERT: ("A new version started reporting while the previous one still runs.",),
    names.MAINTENANCE_ALERT: ("A maintenance window was opened on the lightkeeper server.",),
}


@dataclass(frozen=True)
class _Variant:
    severity: Severity
    scope: str
    for_: str
    receivers: str
    expr: str


@cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("lightkeeper.stack", "templates"),
        autoescape=False,  # markdown, not HTML  # noqa: S701
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template("runbook.md.j2")


def render(spec: Spec, alerts: Sequence[AlertDef]) -> dict[str, str]:
    """One markdown page per alert name, and an index of them."""
    by_name: dict[str, list[AlertDef]] = {}
    for alert in alerts:
        by_name.setdefault(alert.name, []).append(alert)
    out = {f"{RUNBOOKS_DIR}/{name}.md": page(spec, name, group) for name, group in sorted(by_name.items())}
    out[INDEX_PATH] = _index(spec, by_name)
    return out


def readable(text: str) -> str:
    """`{{ $labels.env }}` -> `<env>`, `{{ $value | humanize }}` -> `<value>`."""

    def swap(match: re.Match[str]) -> str:
        inner = match.group(1)
        label = re.match(r"\$labels\.(\w+)", inner)
        if label:
            return f"<{label.group(1)}>"
        return "<value>" if "$value" in inner else "<...>"

    return _PROM_TEMPLATE.sub(swap, text)


def _receivers(spec: Spec, alert: AlertDef) -> str:
    if alert.name == names.WATCHDOG_ALERT:
        every = alertmanager.WATCHDOG_TIMING["repeat_interval"]
        if alertmanager.dead_mans_switch_unrouted(spec):
            return "nobody: no dead man's switch is configured (set `dead_mans_switch` in the spec)"
        return f"{alertmanager.watchdog_receiver(spec)} (dead man's switch, repeats every {every})"
    envs = [e for e in alert.environments if e in spec.environments] or sorted(spec.environments)
    shown: dict[str, list[str]] = {}
    for env in envs:
        receivers = spec.route_for(alert.severity, env).receivers
        text = ", ".join(receivers) if receivers else "nobody (recorded in Alertmanager only)"
        shown.setdefault(text, []).append(env)
    if len(shown) == 1:
        return next(iter(shown))
    return "; ".join(f"{', '.join(where)}: {text}" for text, where in shown.items())


def _scope(alert: AlertDef) -> str:
    where = ", ".join(alert.environments) if alert.environments else "every environment"
    if alert.long_window and alert.short_window:
        return f"{where}, {alert.long_window} and {alert.short_window} windows"
    return where


def _inhibition(spec: Spec, group: Sequence[AlertDef]) -> list[str]:
    if group[0].name == names.WATCHDOG_ALERT:
        return ["Never inhibited: it must always reach its receiver."]
    lines = []
    if spec.inhibition.critical_silences_lower and any(a.severity != "critical" for a in group):
        lines.append(
            "The non-critical rules are silenced while any critical alert fires"
            " for the same service and environment."
        )
    symptom = group[0].category in names.SYMPTOM_CATEGORIES
    if spec.inhibition.maintenance_silences_symptoms and spec.prometheus.server_targets and symptom:
        lines.append(f"Silenced while {names.MAINTENANCE_ALERT} fires for the same environment.")
    pages = [a for a in group if a.category == "slo" and a.severity in ("critical", "high")]
    if spec.inhibition.faster_burn_silences_slower and len({a.long_window for a in pages}) > 1:
        lines.append("The slower page tiers are silenced while the fastest one fires: one page per burn.")
    grace = spec.inhibition.deploy_grace
    if grace and symptom and any(a.severity != "critical" for a in group):
        lines.append(
            f"The non-critical rules are silenced for at most {grace} after a new version appears"
            f" ({names.DEPLOY_GRACE_ALERT}); deploys never silence critical alerts."
        )
    return lines


def _order(alert: AlertDef) -> tuple[int, tuple[str, ...], int, str]:
    window = promql.seconds(alert.long_window) if alert.long_window else 0
    return (SEVERITIES.index(alert.severity), alert.environments, window, alert.expr)


def page(spec: Spec, name: str, group: Sequence[AlertDef]) -> str:
    """The runbook of one alert name (all its severities)."""
    ordered = sorted(group, key=_order)
    first = ordered[0]
    entry = spec.runbooks.alerts.get(name)
    steps: Sequence[str] = (
        entry.steps
        if entry is not None and entry.steps
        else first.runbook_steps or DEFAULT_STEPS[first.category]
    )
    variants = [
        _Variant(
            a.severity,
            _scope(a),
            a.for_ if a.for_ not in ("0s", "") else "immediately",
            _receivers(spec, a),
            a.expr.strip(),
        )
        for a in ordered
    ]
    return _template().render(
        name=name,
        service=first.service,
        category=first.category,
        severities=list(dict.fromkeys(a.severity for a in ordered)),
        dashboard_title=names.DASHBOARD_TITLES[first.dashboard],
        dashboard_url=names.dashboard_url(spec, first.dashboard),
        external_url=entry.url if entry is not None and entry.url else None,
        summary=readable(first.summary),
        descriptions=list(dict.fromkeys(readable(a.description) for a in ordered)),
        variants=variants,
        inhibition=_inhibition(spec, ordered),
        causes=CAUSES_BY_NAME.get(name, CAUSES[first.category]),
        steps=list(steps),
    )


def _index(spec: Spec, by_name: dict[str, list[AlertDef]]) -> str:
    lines = [
        f"# Runbooks for {spec.service}",
        "",
        "<!-- Generated by lightkeeper from lightkeeper.yaml: edit the spec, not this file. -->",
        "",
        "| Alert | Category | Severities |",
        "|---|---|---|",
    ]
    for name, group in sorted(by_name.items()):
        severities = ", ".join(s for s in SEVERITIES if any(a.severity == s for a in group))
        lines.append(f"| [{name}]({name}.md) | {group[0].category} | {severities} |")
    return "\n".join(lines) + "\n"
