"""Slack incoming webhook: one short message per incident change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from lightkeeper.server.engine.notify import secrets
from lightkeeper.server.engine.notify.http_post import post_json
from lightkeeper.server.engine.notify.message import Notification
from lightkeeper.spec.models import SlackReceiver


def slack_body(alert: Notification, channel: str | None) -> dict[str, Any]:
    mark = ":white_check_mark:" if not alert.firing else ":red_circle:"
    body: dict[str, Any] = {"text": f"{mark} *{alert.summary}*\n{alert.description}"}
    if channel:
        body["channel"] = channel
    return body


@dataclass
class SlackChannel:
    name: str
    receiver: SlackReceiver
    client: httpx.AsyncClient

    async def send(self, alert: Notification) -> None:
        url = secrets.resolve(
            self.receiver.webhook_url_env, self.receiver.webhook_url_file, "Slack webhook URL"
        )
        await post_json(self.client, url, slack_body(alert, self.receiver.channel), f"slack {self.name}")
