"""What the dispatcher needs from a channel: a name and an async `send` that raises on refusal."""

from __future__ import annotations

from typing import Protocol

from lightkeeper.server.engine.notify.message import Notification


class Channel(Protocol):
    name: str

    async def send(self, alert: Notification) -> None:
        """Deliver or raise `DeliveryError`; returning means the receiver accepted it."""
