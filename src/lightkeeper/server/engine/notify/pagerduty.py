"""PagerDuty Events API v2: trigger on open, resolve on recovery, one dedup_key per incident.

The dedup_key ties the resolve (and any reminder re-trigger) to the same PagerDuty
incident, so PagerDuty itself collapses repeats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from lightkeeper.server.engine.notify import secrets
from lightkeeper.server.engine.notify.http_post import post_json
from lightkeeper.server.engine.notify.message import Alert, Notification, SloAlert
from lightkeeper.spec.models import PagerDutyReceiver

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info"}


def dedup_key(alert: Notification) -> str:
    if isinstance(alert, SloAlert):
        # one PagerDuty incident per burn episode of one tier
        return f"lightkeeper:{alert.service}:slo:{alert.slo}:{alert.tier}:{int(alert.started_at.timestamp())}"
    return f"lightkeeper:{alert.service}:{alert.probe}:{alert.incident_id}"


def event_body(alert: Notification, routing_key: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger" if alert.firing else "resolve",
        "dedup_key": dedup_key(alert),
    }
    if alert.firing:
        body["payload"] = _payload(alert)
    return body


def _payload(alert: Notification) -> dict[str, Any]:
    if isinstance(alert, SloAlert):
        return {
            "summary": alert.summary[:1024],
            "source": alert.slo,
            "severity": _SEVERITY[alert.severity],
            "component": alert.service,
            "timestamp": alert.started_at.isoformat(),
            "custom_details": {**alert.labels, **alert.annotations},
        }
    return _incident_payload(alert)


def _incident_payload(alert: Alert) -> dict[str, Any]:
    return {
        "summary": alert.summary[:1024],
        "source": alert.probe,
        "severity": _SEVERITY[alert.severity],
        "component": alert.component,
        "timestamp": alert.started_at.isoformat(),
        "custom_details": {"cause": alert.cause, "service": alert.service},
    }


@dataclass
class PagerDutyChannel:
    name: str
    receiver: PagerDutyReceiver
    client: httpx.AsyncClient
    events_url: str = EVENTS_URL

    async def send(self, alert: Notification) -> None:
        key = secrets.resolve(self.receiver.routing_key_env, self.receiver.routing_key_file, "routing key")
        await post_json(self.client, self.events_url, event_body(alert, key), f"pagerduty {self.name}")
