"""Which channels an alert goes to: Alertmanager when configured, else the spec's receivers.

With `alertmanager_url` every alert goes there and Alertmanager's own routing, grouping
and silences apply. Otherwise a severity's route in the spec (`routing:`) names the
receivers; a spec without routing sends every alert to every receiver.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from lightkeeper.server.engine.notify.alertmanager import AlertmanagerChannel
from lightkeeper.server.engine.notify.channel import Channel
from lightkeeper.server.engine.notify.email import EmailChannel
from lightkeeper.server.engine.notify.message import Severity
from lightkeeper.server.engine.notify.pagerduty import EVENTS_URL, PagerDutyChannel
from lightkeeper.server.engine.notify.slack import SlackChannel
from lightkeeper.server.engine.notify.webhook import WebhookChannel
from lightkeeper.spec.models import Receiver, Spec

log = logging.getLogger(__name__)

# Alertmanager resolves an alert that is not re-posted within resolve_timeout (5 min by default)
ALERTMANAGER_RESEND_SECONDS = 240.0


@dataclass
class Router:
    channels: Mapping[str, Channel]
    routes: Mapping[Severity, list[str]] = field(default_factory=dict)
    resend_seconds: float | None = None

    def receivers_for(self, severity: Severity) -> list[str]:
        if severity in self.routes:
            return [r for r in self.routes[severity] if r in self.channels]
        return sorted(self.channels) if not self.routes else []


def build_router(
    spec: Spec | None,
    client: httpx.AsyncClient,
    *,
    alertmanager_url: str | None = None,
    reminder_seconds: float | None = None,
    pagerduty_url: str = EVENTS_URL,
) -> Router:
    """Channels for this server; `reminder_seconds` re-notifies while an incident stays open."""
    if alertmanager_url:
        resend = min(reminder_seconds or ALERTMANAGER_RESEND_SECONDS, ALERTMANAGER_RESEND_SECONDS)
        return Router({"alertmanager": AlertmanagerChannel(alertmanager_url, client)}, {}, resend)
    channels: dict[str, Channel] = {}
    routes: dict[Severity, list[str]] = {}
    if spec is not None:
        for name, receiver in spec.receivers.items():
            channel = _channel(name, receiver, client, pagerduty_url)
            if channel is not None:
                channels[name] = channel
        for severity in spec.routing:
            routes[severity] = list(spec.route_for(severity).receivers)
    return Router(channels, routes, reminder_seconds)


def _channel(name: str, receiver: Receiver, client: httpx.AsyncClient, pagerduty_url: str) -> Channel | None:
    if receiver.webhook is not None:
        return WebhookChannel(name, receiver.webhook, client)
    if receiver.slack is not None:
        return SlackChannel(name, receiver.slack, client)
    if receiver.pagerduty is not None:
        return PagerDutyChannel(name, receiver.pagerduty, client, pagerduty_url)
    if receiver.email is not None:
        return EmailChannel(name, receiver.email)
    log.warning(
        "receiver %s: this channel is only reachable through Alertmanager (set alertmanager_url)", name
    )
    return None
