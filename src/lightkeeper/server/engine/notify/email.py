"""Email over SMTP with the standard library, run in a thread so the event loop never blocks."""

from __future__ import annotations

import asyncio
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage

from lightkeeper.server.engine.notify import secrets
from lightkeeper.server.engine.notify.message import DeliveryError, Notification, SloAlert
from lightkeeper.spec.models import EmailReceiver
from lightkeeper.spec.probes import parse_host_port

_TIMEOUT_SECONDS = 20


def build_message(alert: Notification, receiver: EmailReceiver) -> EmailMessage:
    message = EmailMessage()
    slo = isinstance(alert, SloAlert)
    status = "RESOLVED" if not alert.firing else ("FIRING" if slo else "DOWN")
    message["Subject"] = f"[{status}] {alert.summary}"
    message["From"] = receiver.from_
    message["To"] = receiver.to
    footer = (
        f"SLO {alert.slo}, tier {alert.tier}"
        if isinstance(alert, SloAlert)
        else f"Incident #{alert.incident_id}"
    )
    message.set_content(f"{alert.summary}\n\n{alert.description}\n\n{footer}\n")
    return message


@dataclass
class EmailChannel:
    name: str
    receiver: EmailReceiver

    async def send(self, alert: Notification) -> None:
        password = secrets.optional(
            self.receiver.auth_password_env, self.receiver.auth_password_file, "SMTP password"
        )
        await asyncio.to_thread(self._send_sync, build_message(alert, self.receiver), password)

    def _send_sync(self, message: EmailMessage, password: str | None) -> None:
        host, port = parse_host_port(self.receiver.smarthost, 25)
        try:
            with smtplib.SMTP(host, port, timeout=_TIMEOUT_SECONDS) as smtp:
                if self.receiver.require_tls:
                    smtp.starttls()
                if self.receiver.auth_username and password is not None:
                    smtp.login(self.receiver.auth_username, password)
                smtp.send_message(message)
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"email {self.name}: SMTP {exc.smtp_code}") from None
        except (smtplib.SMTPException, OSError) as exc:
            # server replies can echo the AUTH exchange; keep only the kind of failure
            raise DeliveryError(f"email {self.name}: {type(exc).__name__}") from None
