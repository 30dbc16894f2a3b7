"""`alertmanager/alertmanager.yml` and its notification templates, from the spec.

The routing tree sends each severity to its receivers (one child route per receiver,
`continue: true` on all but the last, so a critical alert reaches the pager AND chat),
the Watchdog to its own receiver ahead of everything else, and whatever is left to a
receiver with no integrations. Inhibition only ever compares labels every generated
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

from lightkeeper.spec.models import SEVERITIES, Receiver, Severity, Spec
from lightkeeper.stack import names
from lightkeeper.stack.errors import GenerationError

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


def render(spec: Spec) -> dict[str, str]:
    """The Alertmanager config and its notification template file."""
    return {CONFIG_PATH: _HEADER + _dump(config(spec)), TEMPLATE_PATH: template_text()}


def config(spec: Spec) -> dict[str, Any]:
    """The Alertmanager configuration as data (what `render` writes)."""
    for reserved in (NULL_RECEIVER,):
        if reserved in spec.receivers:
            raise GenerationError(
                f"receivers.{reserved}: the name {reserved!r} is reserved for alerts that notify nobody;"
                " give this receiver another name"
            )
    return {
        "global": {"resolve_timeout": "5m"},
        "route": _route_tree(spec),
        "inhibit_rules": inhibit_rules(spec),
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
    env = sorted(spec.environments)[0]
    for severity in SEVERITIES:
        labels = {
            "alertname": "LightkeeperRoutingProbe",
            "severity": severity,
            "service": spec.service,
            "environment": env,
            "category": "errors",
        }
        cases.append((labels, list(spec.route_for(severity).receivers) or [NULL_RECEIVER]))
    watchdog = {
        "alertname": names.WATCHDOG_ALERT,
        "severity": "low",
        "service": spec.service,
        "environment": env,
        "category": "meta",
    }
    cases.append((watchdog, [WATCHDOG_RECEIVER]))
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


def inhibit_rules(spec: Spec) -> list[dict[str, Any]]:
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
    if spec.inhibition.maintenance_silences_symptoms:
        planned = "|".join((names.DEPLOY_ALERT, names.MAINTENANCE_ALERT))
        symptoms = "|".join(names.SYMPTOM_CATEGORIES)
        rules.append(
            {
                "source_matchers": [f'alertname=~"{planned}"'],
                "target_matchers": [f'category=~"{symptoms}"', not_watchdog],
                "equal": list(same_place),
            }
        )
    return rules


# --- routing -----------------------------------------------------------------------
def _timing(spec: Spec, severity: Severity) -> dict[str, str]:
    route = spec.route_for(severity)
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
        "receiver": WATCHDOG_RECEIVER,
        **WATCHDOG_TIMING,
    }
    routes: list[dict[str, Any]] = [watchdog]
    for severity in SEVERITIES:
        receivers = spec.route_for(severity).receivers
        node: dict[str, Any] = {
            "matchers": [f'severity="{severity}"'],
            "receiver": receivers[0] if receivers else NULL_RECEIVER,
            **_timing(spec, severity),
        }
        if len(receivers) > 1:
            node["routes"] = [
                {"receiver": r, "continue": True} if i < len(receivers) - 1 else {"receiver": r}
                for i, r in enumerate(receivers)
            ]
        routes.append(node)
    return {
        "receiver": NULL_RECEIVER,
        "group_by": list(n.group_by),
        "group_wait": n.group_wait,
        "group_interval": n.group_interval,
        "repeat_interval": n.repeat_interval,
        "routes": routes,
    }


# --- receivers ---------------------------------------------------------------------
def _receivers(spec: Spec) -> list[dict[str, Any]]:
    out = [{"name": NULL_RECEIVER}]
    if WATCHDOG_RECEIVER not in spec.receivers:
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
            " slack/pagerduty/opsgenie receiver, which read their secrets from files"
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
