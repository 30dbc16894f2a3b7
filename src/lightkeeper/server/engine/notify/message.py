"""The notification shapes every channel renders: an incident change, or a labelled alert
(an SLO burn-rate alert as the generated rule raises it, or an LLM budget threshold)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Event = Literal["opened", "resolved", "reminder"]
Severity = Literal["critical", "high", "medium", "low"]


@dataclass(frozen=True, slots=True)
class Alert:
    """Stored as the outbox payload, so it holds only what is safe to keep: no secrets."""

    event: Event
    incident_id: int
    probe: str
    component: str
    service: str
    severity: Severity
    cause: str
    started_at: datetime
    resolved_at: datetime | None = None

    @property
    def firing(self) -> bool:
        return self.event != "resolved"

    @property
    def summary(self) -> str:
        if self.event == "resolved":
            return f"{self.component} recovered (probe {self.probe})"
        still = "still down" if self.event == "reminder" else "is down"
        return f"{self.component} {still} (probe {self.probe})"

    @property
    def description(self) -> str:
        started = self.started_at.isoformat()
        if self.resolved_at is not None:
            seconds = int((self.resolved_at - self.started_at).total_seconds())
            return f"{self.cause} (down from {started} for {seconds} s)"
        return f"{self.cause} (down since {started})"

    def to_payload(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "incident_id": self.incident_id,
            "probe": self.probe,
            "component": self.component,
            "service": self.service,
            "severity": self.severity,
            "cause": self.cause,
            "started_at": self.started_at.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
        }

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> Alert:
        resolved = data.get("resolved_at")
        return cls(
            event=data["event"],
            incident_id=int(data["incident_id"]),
            probe=str(data["probe"]),
            component=str(data["component"]),
            service=str(data["service"]),
            severity=data["severity"],
            cause=str(data["cause"]),
            started_at=datetime.fromisoformat(data["started_at"]),
            resolved_at=datetime.fromisoformat(resolved) if resolved else None,
        )


class DeliveryError(Exception):
    """A channel refused or could not be reached; the text is stored, so it never holds a secret."""


SLO_ALERT_KIND = "slo_alert"
# Budget alerts travel as labelled alerts too (kind SLO_ALERT_KIND), under this name.
BUDGET_ALERTNAME = "LLMBudgetThreshold"
SloStatus = Literal["firing", "resolved"]


@dataclass(frozen=True, slots=True)
class SloAlert:
    """A burn-rate alert shaped as the generated Prometheus rule raises it.

    The labels are the alert's identity in Alertmanager, so they are exactly the
    generated rule's labels (no server-only extras); `slo` and `tier` ride alongside
    for ordering and display.
    """

    status: SloStatus
    slo: str
    tier: str
    labels: dict[str, str]
    annotations: dict[str, str]
    started_at: datetime
    resolved_at: datetime | None = None
    # When the alert ends by itself (a budget alert: at the end of its month). Alertmanager
    # keeps an alert with a future `endsAt` firing until then, so it is never re-posted.
    ends_at: datetime | None = None

    @property
    def firing(self) -> bool:
        return self.status == "firing"

    @property
    def severity(self) -> Severity:
        return self.labels["severity"]  # type: ignore[return-value]  # written from a validated spec

    @property
    def service(self) -> str:
        return self.labels.get("service", "")

    @property
    def summary(self) -> str:
        text = self.annotations.get("summary", self.labels.get("alertname", self.slo))
        return text if self.firing else f"resolved: {text}"

    @property
    def description(self) -> str:
        runbook = self.annotations.get("runbook_url")
        text = self.annotations.get("description", "")
        return f"{text}\nRunbook: {runbook}".strip() if runbook else text

    @property
    def series_key(self) -> str:
        """Dedupe-key prefix shared by every state change of this SLO tier."""
        return f"slo:{self.slo}:{self.tier}:"

    def to_payload(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "slo": self.slo,
            "tier": self.tier,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "started_at": self.started_at.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            **({"ends_at": self.ends_at.isoformat()} if self.ends_at else {}),
        }

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> SloAlert:
        resolved = data.get("resolved_at")
        ends = data.get("ends_at")
        return cls(
            status=data["status"],
            slo=str(data["slo"]),
            tier=str(data["tier"]),
            labels={str(k): str(v) for k, v in data["labels"].items()},
            annotations={str(k): str(v) for k, v in data["annotations"].items()},
            started_at=datetime.fromisoformat(data["started_at"]),
            resolved_at=datetime.fromisoformat(resolved) if resolved else None,
            ends_at=datetime.fromisoformat(ends) if ends else None,
        )


Notification = Alert | SloAlert
