"""`AlertmanagerConfig`: alertmanager.yml's routing, in the operator's camelCase schema.

The routing tree, inhibit rules and receivers are the ones `stack.alertmanager` builds
for alertmanager.yml, converted key by key, so the two targets can never route
differently. What changes is where secrets come from: a `*_file` path or `*_env`
variable becomes a key of one Secret (`stack.kubernetes.secrets`).

The operator confines a namespaced AlertmanagerConfig to alerts whose `namespace`
label is its own namespace; the PrometheusRule therefore labels every alert with it.
"""

from __future__ import annotations

import re
from typing import Any

from lightkeeper.spec.models import Spec
from lightkeeper.stack import alertmanager
from lightkeeper.stack.errors import GenerationError
from lightkeeper.stack.kubernetes import placement
from lightkeeper.stack.kubernetes.secrets import secret_key
from lightkeeper.stack.profile import Profile

NAME_SUFFIX = "routing"
_MATCHER = re.compile(r'^([a-zA-Z_][a-zA-Z0-9_]*)(=~|!~|!=|=)"((?:[^"\\]|\\.)*)"$')
_ROUTE_KEYS = {
    "receiver": "receiver",
    "group_by": "groupBy",
    "group_wait": "groupWait",
    "group_interval": "groupInterval",
    "repeat_interval": "repeatInterval",
    "continue": "continue",
}
# alertmanager.yml secret fields -> the CRD's SecretKeySelector fields.
_SECRET_FIELDS = {
    "api_url_file": "apiURL",
    "routing_key_file": "routingKey",
    "api_key_file": "apiKey",
    "auth_password_file": "authPassword",
}
_PLAIN_FIELDS = {
    "send_resolved": "sendResolved",
    "require_tls": "requireTLS",
    "auth_username": "authUsername",
    "api_url": "apiURL",
}
_CONFIG_LISTS = {
    "slack_configs": "slackConfigs",
    "pagerduty_configs": "pagerdutyConfigs",
    "opsgenie_configs": "opsgenieConfigs",
    "email_configs": "emailConfigs",
    "webhook_configs": "webhookConfigs",
}


def resource(spec: Spec, profile: Profile) -> dict[str, Any]:
    k8s = placement.section(spec)
    source = alertmanager.config(spec, profile)
    return {
        "apiVersion": f"{placement.API_GROUP}/v1alpha1",
        "kind": "AlertmanagerConfig",
        "metadata": placement.metadata(spec, f"{spec.service}-{NAME_SUFFIX}", k8s.namespace),
        "spec": {
            "route": route(source["route"]),
            "inhibitRules": [inhibit_rule(r) for r in source["inhibit_rules"]],
            "receivers": [receiver(k8s.secret_name, r) for r in source["receivers"]],
        },
    }


def matcher(text: str) -> dict[str, str]:
    """`name="value"` (alertmanager.yml's matcher syntax) -> the CRD's structured matcher."""
    found = _MATCHER.match(text)
    if not found:
        raise GenerationError(f"cannot convert the matcher {text!r} for AlertmanagerConfig; this is a bug")
    name, op, value = found.groups()
    return {"name": name, "matchType": op, "value": re.sub(r"\\(.)", r"\1", value)}


def route(node: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {_ROUTE_KEYS[k]: v for k, v in node.items() if k in _ROUTE_KEYS}
    unknown = set(node) - set(_ROUTE_KEYS) - {"matchers", "routes"}
    if unknown:
        raise GenerationError(f"route keys {sorted(unknown)} have no AlertmanagerConfig form; this is a bug")
    if "matchers" in node:
        out["matchers"] = [matcher(m) for m in node["matchers"]]
    if "routes" in node:
        out["routes"] = [route(child) for child in node["routes"]]
    return out


def inhibit_rule(rule: dict[str, Any]) -> dict[str, Any]:
    return {
        "sourceMatch": [matcher(m) for m in rule["source_matchers"]],
        "targetMatch": [matcher(m) for m in rule["target_matchers"]],
        "equal": list(rule["equal"]),
    }


def receiver(secret_name: str, source: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": source["name"]}
    for key, configs in source.items():
        if key == "name":
            continue
        if key not in _CONFIG_LISTS:
            raise GenerationError(
                f"receiver integration {key!r} has no AlertmanagerConfig form; this is a bug"
            )
        out[_CONFIG_LISTS[key]] = [_integration(secret_name, source["name"], c) for c in configs]
    return out


def _integration(secret_name: str, receiver_name: str, config: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key in _SECRET_FIELDS:
            field = f"receivers.{receiver_name}.{key}"
            out[_SECRET_FIELDS[key]] = {"name": secret_name, "key": secret_key(value, field)}
        elif key in _PLAIN_FIELDS:
            out[_PLAIN_FIELDS[key]] = value
        elif key in ("details", "headers"):
            out[key] = [{"key": k, "value": v} for k, v in sorted(value.items())]
        elif key == "links":
            out["pagerDutyLinkConfigs"] = [{"href": link["href"], "alt": link["text"]} for link in value]
        else:  # title, text, color, channel, description, severity, message, ... share their name
            out[key] = value
    return out
