"""`alertmanager/alertmanager.yml` and its notification templates, from the spec.

The routing tree is severity x environment. Each severity goes to its receivers (one
child route per receiver, `continue: true` on all but the last, so a critical alert
reaches the pager AND chat). Only production pages: every other environment gets its own
branch, matched first, where critical and high go where `high` goes and the rest to
nobody, unless the environment gives its own `routing`. The Watchdog goes to its own
receiver ahead of everything else, and whatever is left to a receiver with no
integrations. Inhibition only ever compares labels every generated
alert carries (`names.ALERT_LABELS`): Alertmanager treats a missing label as equal to
another missing label, so `equal` on an optional label would silence unrelated alerts.

Secrets never appear in the file. Alertmanager 0.25 reads Slack, PagerDuty, Opsgenie
and SMTP secrets from `*_file` fields; a spec `*_env` reference becomes a file under
`SECRETS_DIR` that the compose overlay writes from the environment at container start.
0.25 has no `url_file` for webhooks, so a webhook whose URL is a secret is refused with
a message saying what to do instead.

Timing per severity, most specific first: the severity's long-form route, then a value
written under `notification:`, then `SEVERITY_TIMING` (critical repeats hourly, medium
tickets twice a day), then the `notification:` model default.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import yaml

from lightkeeper.spec.models import SEVERITIES, Receiver, Severity, SeverityRoute, Spec
from lightkeeper.stack import names, promql
from lightkeeper.stack import slo as slo_math
from lightkeeper.stack.errors import GenerationError
from lightkeeper.stack.meta_rules import has_maintenance_alert
from lightkeeper.stack.profile import Profile, get_profile
from lightkeeper.stack.slo_rules import slo_burn_alert

CONFIG_PATH = "alertmanager/alertmanager.yml"
TEMPLATE_PATH = "alertmanager/templates/lightkeeper.tmpl"
# Where `*_env` secrets are materialised inside the Alertmanager container.
SECRETS_DIR = "/etc/alertmanager/secrets"
NULL_RECEIVER = "null"
WATCHDOG_RECEIVER = "watchdog"

# Named templates defined in templates/alertmanager.tmpl, with the kind amtool renders them as.
TEMPLATES: dict[str, str] = {
    "lightkeeper.title": "text",
    "lightkeeper.text": "text",
    "lightkeeper.slack.text": "text",
    "lightkeeper.slack.color": "text",
    "lightkeeper.runbook": "text",
    "lightkeeper.dashboard": "text",
    "lightkeeper.pagerduty.severity": "text",
    "lightkeeper.opsgenie.priority": "text",
    "lightkeeper.email.html": "html",
}

SEVERITY_TIMING: dict[Severity, dict[str, str]] = {
    "critical": {"group_wait": "10s", "repeat_interval": "1h"},
    "high": {},
    "medium": {"repeat_interval": "12h"},
    "low": {},
}
# The dead-man switch: notify at once and keep repeating so silence means a broken pipeline.
WATCHDOG_TIMING = {"group_wait": "0s", "group_interval": "1m", "repeat_interval": "5m"}

_TIMING_FIELDS = ("group_wait", "group_interval", "repeat_interval")


def render(spec: Spec, profile: Profile | None = None) -> dict[str, str]:
    """The Alertmanager config and its notification template file."""
    return {CONFIG_PATH: _HEADER + _dump(config(spec, profile)), TEMPLATE_PATH: template_text()}


def config(spec: Spec, profile: Profile | None = None) -> dict[str, Any]:
    """The Alertmanager configuration as data (what `render` writes)."""
    for reserved in (NULL_RECEIVER,):
        if reserved in spec.receivers:
            raise GenerationError(
                f"receivers.{reserved}: the name {reserved!r} is reserved for alerts that notify nobody;"
                " give this receiver another name",
                loc=("receivers", reserved),
            )
    return {
        "global": {"resolve_timeout": "5m"},
        "route": _route_tree(spec),
        "inhibit_rules": inhibit_rules(spec, profile or get_profile(None)),
        "receivers": _receivers(spec),
        "templates": ["templates/*.tmpl"],
    }


def template_text() -> str:
    """The notification templates (one file, several `define`s)."""
    return resources.files("lightkeeper.stack").joinpath("templates/alertmanager.tmpl").read_text("utf-8")


def secret_env_vars(spec: Spec) -> dict[str, str]:
    """Environment variable -> file path for every `*_env` secret, for the compose overlay."""
    found: dict[str, str] = {}
    for name in sorted(spec.receivers):
        for _field, env in _env_refs(name, spec.receivers[name]):
            found[env] = f"{SECRETS_DIR}/{env}"
    return dict(sorted(found.items()))


def routing_expectations(spec: Spec) -> list[tuple[dict[str, str], list[str]]]:
    """Label sets and the receivers they must reach, for `amtool config routes test`."""
    cases: list[tuple[dict[str, str], list[str]]] = []
    for env in sorted(spec.environments):
        for severity in SEVERITIES:
            labels = {
                "alertname": "LightkeeperRoutingProbe",
                "severity": severity,
                "service": spec.service,
                "environment": env,
                "category": "errors",
            }
            cases.append((labels, list(spec.route_for(severity, env).receivers) or [NULL_RECEIVER]))
    env = sorted(spec.environments)[0]
    watchdog = {
        "alertname": names.WATCHDOG_ALERT,
        "severity": "low",
        "service": spec.service,
        "environment": env,
        "category": "meta",
    }
    cases.append((watchdog, [watchdog_receiver(spec)]))
    return cases


def example_template_data(spec: Spec) -> str:
    """A notification payload (amtool's `--template.data`) shaped like a generated alert."""
    env = sorted(spec.environments)[0]
    labels = {
        "alertname": "ErrorRate",
        "severity": "critical",
        "service": spec.service,
        "environment": env,
        "category": "errors",
    }
    annotations = {
        "summary": f"{spec.service} {env}: 7.5% of requests fail",
        "description": "More than 5% of requests were answered with a 5xx status for 5 minutes.",
        "runbook_url": names.runbook_url(spec, "ErrorRate"),
        "dashboard_url": names.dashboard_url(spec, "api-performance"),
    }
    alert = {
        "status": "firing",
        "labels": labels,
        "annotations": annotations,
        "startsAt": "2024-01-01T00:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": "0000000000000001",
    }
    data = {
        "receiver": "chat",
        "status": "firing",
        "alerts": [alert],
        "groupLabels": {k: labels[k] for k in ("alertname", "environment", "service")},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "http://alertmanager:9093",
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def inhibit_rules(spec: Spec, profile: Profile | None = None) -> list[dict[str, Any]]:
    """Inhibit rules; `equal` only ever names labels every generated alert carries."""
    same_place = sorted({"service", "environment"} & set(names.ALERT_LABELS))
    not_watchdog = f'alertname!="{names.WATCHDOG_ALERT}"'
    rules: list[dict[str, Any]] = []
    if spec.inhibition.critical_silences_lower:
        lower = "|".join(s for s in SEVERITIES if s != "critical")
        rules.append(
            {
                "source_matchers": ['severity="critical"', not_watchdog],
                "target_matchers": [f'severity=~"{lower}"', not_watchdog],
                "equal": list(same_place),
            }
        )
    symptoms = f'category=~"{"|".join(names.SYMPTOM_CATEGORIES)}"'
    if spec.inhibition.maintenance_silences_symptoms and has_maintenance_alert(spec):
        rules.append(
            {
                "source_matchers": [f'alertname="{names.MAINTENANCE_ALERT}"'],
                "target_matchers": [symptoms, not_watchdog],
                "equal": list(same_place),
            }
        )
    if spec.inhibition.deploy_grace:
        targets = [symptoms, 'severity!="critical"', not_watchdog]
        fast = fast_page_windows(spec, profile or get_profile(None))
        if fast:
            targets.append(f'long_window!~"{"|".join(fast)}"')
        rules.append(
            {
                "source_matchers": [f'alertname="{names.DEPLOY_GRACE_ALERT}"'],
                "target_matchers": targets,
                "equal": list(same_place),
            }
        )
    if spec.inhibition.faster_burn_silences_slower:
        rules.extend(_one_page_per_burn(spec, profile or get_profile(None)))
    return rules


def _one_page_per_burn(spec: Spec, profile: Profile) -> list[dict[str, Any]]:
    """While an SLO's fastest page tier fires, its slower page tiers stay quiet.

    Both tiers see the same burn: the slow one would page a second time for the incident
    the fast one already reported. Source and target are pinned to one SLO's alert name,
    so `long_window` is carried by both sides.
    """
    rules: list[dict[str, Any]] = []
    for slo in spec.slos:
        pages = sorted(
            (t for t in slo_math.tier_data(slo) if t.severity in ("critical", "high")),
            key=lambda t: promql.seconds(t.long_window),
        )
        if len(pages) < 2:
            continue
        name = slo_burn_alert(slo)
        slower = "|".join(profile.window(t.long_window) for t in pages[1:])
        rules.append(
            {
                "source_matchers": [
                    f'alertname="{name}"',
                    f'long_window="{profile.window(pages[0].long_window)}"',
                ],
                "target_matchers": [f'alertname="{name}"', f'long_window=~"{slower}"'],
                "equal": sorted({"service", "environment"} & set(names.ALERT_LABELS)),
            }
        )
    return rules


def fast_page_windows(spec: Spec, profile: Profile) -> list[str]:
    """Long windows (as the rules label them) of each SLO's fastest page tier when it is not
    critical; critical alerts are never muted by a deploy anyway."""
    found: set[str] = set()
    for slo in spec.slos:
        pages = [t for t in slo_math.tier_data(slo) if t.severity in ("critical", "high")]
        if pages:
            fastest = min(pages, key=lambda t: promql.seconds(t.long_window))
            if fastest.severity != "critical":
                found.add(profile.window(fastest.long_window))
    return sorted(found)


# --- routing -----------------------------------------------------------------------
def _timing(spec: Spec, severity: Severity, route: SeverityRoute) -> dict[str, str]:
    explicit = spec.notification.model_fields_set
    out: dict[str, str] = {}
    for field in _TIMING_FIELDS:
        value = getattr(route, field)
        if value is None and field not in explicit:
            value = SEVERITY_TIMING[severity].get(field)
        if value is None:
            value = getattr(spec.notification, field)
        out[field] = value
    return out


def _route_tree(spec: Spec) -> dict[str, Any]:
    n = spec.notification
    watchdog = {
        "matchers": [f'alertname="{names.WATCHDOG_ALERT}"'],
        "receiver": watchdog_receiver(spec),
        **WATCHDOG_TIMING,
    }
    routes: list[dict[str, Any]] = [watchdog]
    for env in own_routing_environments(spec):
        routes.append(
            {
                "matchers": [f'environment="{env}"'],
                "receiver": NULL_RECEIVER,
                "routes": [_severity_node(spec, s, spec.route_for(s, env)) for s in SEVERITIES],
            }
        )
    # Production, and any environment label the spec does not declare: better a page too
    # many than an outage nobody hears about.
    routes.extend(_severity_node(spec, s, spec.route_for(s)) for s in SEVERITIES)
    return {
        "receiver": NULL_RECEIVER,
        "group_by": list(n.group_by),
        "group_wait": n.group_wait,
        "group_interval": n.group_interval,
        "repeat_interval": n.repeat_interval,
        "routes": routes,
    }


def watchdog_receiver(spec: Spec) -> str:
    """The dead man's switch: the spec's `dead_mans_switch`, else a receiver named `watchdog`.

    Without either the Watchdog goes to an empty `watchdog` receiver: it is unrouted, and
    `lightkeeper check` says so (see `dead_mans_switch_unrouted`).
    """
    return spec.dead_mans_switch or WATCHDOG_RECEIVER


def dead_mans_switch_unrouted(spec: Spec) -> bool:
    return watchdog_receiver(spec) not in spec.receivers


def own_routing_environments(spec: Spec) -> list[str]:
    """Environments routed apart from the top-level `routing`: non-production, or their own."""
    return [
        name
        for name in sorted(spec.environments)
        if spec.environments[name].routing is not None or not spec.is_production(name)
    ]


def _severity_node(spec: Spec, severity: Severity, route: SeverityRoute) -> dict[str, Any]:
    receivers = route.receivers
    node: dict[str, Any] = {
        "matchers": [f'severity="{severity}"'],
        "receiver": receivers[0] if receivers else NULL_RECEIVER,
        **_timing(spec, severity, route),
    }
    if len(receivers) > 1:
        node["routes"] = [
            {"receiver": r, "continue": True} if i < len(receivers) - 1 else {"receiver": r}
            for i, r in enumerate(receivers)
        ]
    return node


# --- receivers ---------------------------------------------------------------------
def _receivers(spec: Spec) -> list[dict[str, Any]]:
    out = [{"name": NULL_RECEIVER}]
    if dead_mans_switch_unrouted(spec):
        out.append({"name": WATCHDOG_RECEIVER})
    for name in spec.receivers:
        out.append({"name": name, **_integration(name, spec.receivers[name])})
    return sorted(out, key=lambda r: str(r["name"]))


def _tmpl(name: str) -> str:
    return '{{ template "' + name + '" . }}'


def _secret(file: str | None, env: str | None) -> str:
    if file:
        return file
    assert env is not None  # the spec model requires one of the two
    return f"{SECRETS_DIR}/{env}"


def _env_refs(name: str, r: Receiver) -> list[tuple[str, str]]:
    refs: list[tuple[str, str]] = []
    if r.slack and r.slack.webhook_url_env:
        refs.append(("webhook_url_env", r.slack.webhook_url_env))
    if r.pagerduty and r.pagerduty.routing_key_env:
        refs.append(("routing_key_env", r.pagerduty.routing_key_env))
    if r.opsgenie and r.opsgenie.api_key_env:
        refs.append(("api_key_env", r.opsgenie.api_key_env))
    if r.email and r.email.auth_password_env:
        refs.append(("auth_password_env", r.email.auth_password_env))
    if r.webhook and (r.webhook.url_env or r.webhook.url_file):
        field = "url_env" if r.webhook.url_env else "url_file"
        raise GenerationError(
            f"receivers.{name}.webhook.{field}: Alertmanager 0.25 cannot read a webhook URL from a file or"
            " the environment (url_file arrived in 0.26), so this secret would have to be written into"
            " alertmanager.yml; use a webhook URL that carries no secret under `url` and authenticate the"
            " receiving side another way (network policy, a relay that holds the token), or use a"
            " slack/pagerduty/opsgenie receiver, which read their secrets from files",
            loc=("receivers", name, "webhook", field),
        )
    return refs


def _integration(name: str, r: Receiver) -> dict[str, Any]:
    _env_refs(name, r)  # refuse what 0.25 cannot keep out of the file
    if r.slack:
        slack: dict[str, Any] = {
            "api_url_file": _secret(r.slack.webhook_url_file, r.slack.webhook_url_env),
            "send_resolved": True,
            "title": _tmpl("lightkeeper.title"),
            "text": _tmpl("lightkeeper.slack.text"),
            "color": _tmpl("lightkeeper.slack.color"),
        }
        if r.slack.channel:
            slack["channel"] = r.slack.channel
        return {"slack_configs": [slack]}
    if r.pagerduty:
        return {
            "pagerduty_configs": [
                {
                    "routing_key_file": _secret(r.pagerduty.routing_key_file, r.pagerduty.routing_key_env),
                    "send_resolved": True,
                    "description": _tmpl("lightkeeper.title"),
                    "severity": _tmpl("lightkeeper.pagerduty.severity"),
                    "details": {
                        "alerts": _tmpl("lightkeeper.text"),
                        "runbook": _tmpl("lightkeeper.runbook"),
                        "dashboard": _tmpl("lightkeeper.dashboard"),
                    },
                    "links": [
                        {"href": _tmpl("lightkeeper.runbook"), "text": "Runbook"},
                        {"href": _tmpl("lightkeeper.dashboard"), "text": "Dashboard"},
                    ],
                }
            ]
        }
    if r.opsgenie:
        ops: dict[str, Any] = {
            "api_key_file": _secret(r.opsgenie.api_key_file, r.opsgenie.api_key_env),
            "send_resolved": True,
            "message": _tmpl("lightkeeper.title"),
            "description": _tmpl("lightkeeper.text"),
            "priority": _tmpl("lightkeeper.opsgenie.priority"),
            "source": "lightkeeper",
            "tags": "lightkeeper,{{ .CommonLabels.service }},{{ .CommonLabels.environment }}",
        }
        if r.opsgenie.api_url:
            ops["api_url"] = r.opsgenie.api_url
        return {"opsgenie_configs": [ops]}
    if r.email:
        e = r.email
        email: dict[str, Any] = {
            "to": e.to,
            "from": e.from_,
            "smarthost": e.smarthost,
            "require_tls": e.require_tls,
            "send_resolved": True,
            "headers": {"Subject": _tmpl("lightkeeper.title")},
            "html": _tmpl("lightkeeper.email.html"),
            "text": _tmpl("lightkeeper.text"),
        }
        if e.auth_username:
            email["auth_username"] = e.auth_username
        if e.auth_password_file or e.auth_password_env:
            email["auth_password_file"] = _secret(e.auth_password_file, e.auth_password_env)
        return {"email_configs": [email]}
    assert r.webhook is not None  # the model guarantees exactly one channel
    return {"webhook_configs": [{"url": r.webhook.url, "send_resolved": r.webhook.send_resolved}]}


_HEADER = (
    "# Generated by lightkeeper from lightkeeper.yaml - edit the spec, not this file.\n"
    "# Secrets are read from files: *_file paths from the spec must be mounted into the\n"
    f"# Alertmanager container; *_env secrets are written to {SECRETS_DIR}/<VARIABLE>\n"
    "# by compose.observability.yml when the container starts.\n"
)


def _dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False, allow_unicode=True, width=1000)
