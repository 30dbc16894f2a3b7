"""Alertmanager's v2 API: routing, grouping, silences and inhibition then live in Alertmanager.

Alertmanager treats a firing alert without `endsAt` as resolved after its
`resolve_timeout` (5 min by default) unless it is posted again, so the dispatcher
re-posts open incidents (see `Router.resend_seconds`); the label set is the identity,
so a re-post never makes a second alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from lightkeeper.server.engine.notify.http_post import post_json
from lightkeeper.server.engine.notify.message import Notification, SloAlert

ALERTNAME = "ProbeDown"


def alert_body(alert: Notification) -> dict[str, Any]:
    if isinstance(alert, SloAlert):
        return _slo_body(alert)
    body: dict[str, Any] = {
        "labels": {
            "alertname": ALERTNAME,
            "probe": alert.probe,
            "severity": alert.severity,
            "service": alert.service,
            "component": alert.component,
        },
        "annotations": {"summary": alert.summary, "description": alert.description},
        "startsAt": alert.started_at.isoformat(),
    }
    if alert.resolved_at is not None:
        body["endsAt"] = alert.resolved_at.isoformat()
    return body


def _slo_body(alert: SloAlert) -> dict[str, Any]:
    """The generated rule's labels and annotations, so Alertmanager routes and silences it alike."""
    body: dict[str, Any] = {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": alert.started_at.isoformat(),
    }
    ends = alert.resolved_at or alert.ends_at
    if ends is not None:
        body["endsAt"] = ends.isoformat()
    return body


@dataclass
class AlertmanagerChannel:
    base_url: str
    client: httpx.AsyncClient
    name: str = "alertmanager"

    async def send(self, alert: Notification) -> None:
        url = self.base_url.rstrip("/") + "/api/v2/alerts"
        await post_json(self.client, url, [alert_body(alert)], "alertmanager")
