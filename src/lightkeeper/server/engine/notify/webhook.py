"""A generic JSON webhook: the alert's stored fields plus a readable summary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from lightkeeper.server.engine.notify import secrets
from lightkeeper.server.engine.notify.http_post import post_json
from lightkeeper.server.engine.notify.message import BUDGET_ALERTNAME, Notification, SloAlert
from lightkeeper.spec.models import WebhookReceiver


def webhook_body(alert: Notification) -> dict[str, Any]:
    kind = "incident"
    if isinstance(alert, SloAlert):
        kind = "budget" if alert.labels.get("alertname") == BUDGET_ALERTNAME else "slo"
    return {
        "kind": kind,
        **alert.to_payload(),
        "status": "firing" if alert.firing else "resolved",
        "summary": alert.summary,
        "description": alert.description,
    }


@dataclass
class WebhookChannel:
    name: str
    receiver: WebhookReceiver
    client: httpx.AsyncClient

    async def send(self, alert: Notification) -> None:
        if not alert.firing and not self.receiver.send_resolved:
            return
        url = self.receiver.url or secrets.resolve(
            self.receiver.url_env, self.receiver.url_file, "webhook URL"
        )
        await post_json(self.client, url, webhook_body(alert), f"webhook {self.name}")
