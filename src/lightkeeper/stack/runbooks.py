"""`runbooks/<AlertName>.md`: one page per alert name, linked from every alert's annotations.

A page answers, in the order an on-call engineer asks: what it means, three checks to
run now (the dashboard panel with its PromQL, the matching log lines, slow or failed
traces), likely causes, the next steps, how to silence it without hiding the next
incident, and when to call someone. The words live in `runbook_content.yaml`; the
queries are built by `runbook_queries` from the generated dashboards and configs.

An alert name can have several rules (one per severity, or per environment when the
thresholds differ); the page lists each with its routing and PromQL. Next steps come
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
from lightkeeper.stack import alertmanager, names, panel_links, promql, runbook_content
from lightkeeper.stack.rule_defs import AlertDef
from lightkeeper.stack.runbook_queries import ENVIRONMENT, dashboard_variables, fill, queries, silence_command

RUNBOOKS_DIR = "runbooks"
INDEX_PATH = f"{RUNBOOKS_DIR}/README.md"

_PROM_TEMPLATE = re.compile(r"\{\{\s*(.*?)\s*\}\}")


@dataclass(frozen=True)
class _Link:
    label: str
    url: str


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


def _panel_links(spec: Spec, group: Sequence[AlertDef], panel: panel_links.Panel) -> list[_Link]:
    """One link per environment the alert fires in, with that environment selected."""
    variables = dashboard_variables(spec, group, " ".join([panel.title, *panel.exprs]))
    envs: list[str] = []
    for alert in group:
        found = panel_links.label_environments(spec, alert)
        if found is None:
            return [_Link("every environment", panel_links.url(spec, panel, None, variables))]
        envs += [e for e in found if e not in envs]
    return [_Link(env, panel_links.url(spec, panel, env, variables)) for env in sorted(envs)]


def page(spec: Spec, name: str, group: Sequence[AlertDef]) -> str:
    """The runbook of one alert name (all its severities)."""
    ordered = sorted(group, key=_order)
    first = ordered[0]
    entry = spec.runbooks.alerts.get(name)
    category = runbook_content.category(first)
    text = runbook_content.alert_text(first)
    steps: Sequence[str] = (
        entry.steps if entry is not None and entry.steps else first.runbook_steps or category.steps
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
    panel = panel_links.alert_panel(spec, first)
    slo = panel_links.slo_row(spec, first)
    found = queries(spec, ordered, panel, text)
    return _template().render(
        name=name,
        service=first.service,
        category=first.category,
        severities=list(dict.fromkeys(a.severity for a in ordered)),
        dashboard_title=names.DASHBOARD_TITLES[panel.dashboard],
        dashboard_url=names.dashboard_url(spec, panel.dashboard),
        panel=panel,
        panel_title=fill(spec, ordered, panel.title, None),
        panel_links=_panel_links(spec, ordered, panel),
        external_url=entry.url if entry is not None and entry.url else None,
        means=text.means.replace("{slo}", slo or "its"),
        summary=readable(first.summary),
        descriptions=list(dict.fromkeys(readable(a.description) for a in ordered)),
        variants=variants,
        inhibition=_inhibition(spec, ordered),
        queries=found,
        placeholder=ENVIRONMENT in found.promql + found.logql,
        causes=text.causes or category.causes,
        steps=list(steps),
        silence=silence_command(spec, ordered, category),
        never_silence=category.silence.never,
        silence_duration=category.silence.duration,
        escalate=category.escalate,
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
