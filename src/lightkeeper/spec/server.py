"""The `server:` section of `lightkeeper.yaml`: status page, SLA commitments, credits.

The SLA commitments are what the team promised its customers; `/sla/status` measures
the current calendar month against them and the monthly report turns a missed
availability target into a service credit through `credits` tiers. Keeping them in
the spec (not in the server's database) means the promise is reviewed in git like
everything else.
"""

from __future__ import annotations

import zoneinfo
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SlaCommitments(_Model):
    """Targets for one calendar month; an omitted target is not promised."""

    availability_percent: float | None = Field(default=99.5, gt=0, le=100, description="e.g. 99.5")
    latency_p95_ms: float | None = Field(
        default=None, gt=0, description="p95 probe latency must stay below this"
    )
    error_rate_percent: float | None = Field(
        default=None, ge=0, le=100, description="Share of failed probe checks must stay below this"
    )


class CreditTier(_Model):
    """Availability below `below_percent` earns `credit_percent` of the monthly fee."""

    below_percent: float = Field(gt=0, le=100)
    credit_percent: float = Field(gt=0, le=100)


class ServerSection(_Model):
    public: bool = Field(default=True, description="Status page and SLA reads need no token")
    timezone: str = Field(default="UTC", description="IANA time zone of calendar months and day bars")
    status_page_days: int = Field(
        default=90, ge=7, le=365, description="Length of the status page's day bars"
    )
    alertmanager_url: str | None = Field(default=None, description="Send notifications to this Alertmanager")
    retention_days: int = Field(default=7, ge=1, le=400, description="How long raw probe results are kept")
    prometheus_url: str | None = Field(
        default=None,
        description="Read SLO numbers from this Prometheus's generated SLO rules instead of scraping",
    )
    prometheus_window_scale: int = Field(
        default=1, ge=1, le=3600, description="The rules' window divisor: 60 for `generate --profile test`"
    )
    prometheus_timeout_seconds: float = Field(
        default=2.0, gt=0, le=30, description="Longest wait for Prometheus before SLOs show no data"
    )
    workflow_database_url_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Environment variable holding the service's database URL: the server then samples "
        "the spec's workflow itself, for services that cannot run lightkeeper.instrument_workflow()",
    )
    workflow_environment: str | None = Field(
        default=None,
        description="The environment whose database that is (default: the spec's first); the server "
        "started with that --environment samples it, and its series carry that environment",
    )
    sla: SlaCommitments = Field(default_factory=lambda: SlaCommitments())
    credits: list[CreditTier] = Field(
        default_factory=list,
        examples=[
            [{"below_percent": 99.5, "credit_percent": 10}, {"below_percent": 99, "credit_percent": 25}]
        ],
    )
    credit_cap_percent: float = Field(default=100, gt=0, le=100, description="No month earns more credit")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"timezone {v!r} is not an IANA time zone such as Europe/Berlin or UTC"
            ) from None
        return v

    @field_validator("alertmanager_url", "prometheus_url")
    @classmethod
    def _url(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            example = (
                "http://alertmanager:9093"
                if info.field_name == "alertmanager_url"
                else "http://prometheus:9090"
            )
            raise ValueError(f"{info.field_name} {v!r} must be an http(s):// URL, e.g. {example}")
        return v

    @model_validator(mode="after")
    def _tiers(self) -> ServerSection:
        thresholds = [t.below_percent for t in self.credits]
        if len(set(thresholds)) != len(thresholds):
            raise ValueError("credits: each below_percent may appear once")
        return self

    def credit_percent(self, availability_percent: float | None) -> float:
        """The credit owed for a month's availability: the tier with the lowest threshold met, capped."""
        if availability_percent is None:
            return 0.0
        owed = max(
            (t.credit_percent for t in self.credits if availability_percent < t.below_percent), default=0.0
        )
        return min(owed, self.credit_cap_percent)


SERVER_EXAMPLE: dict[str, Any] = {
    "public": True,
    "timezone": "Europe/Berlin",
    "status_page_days": 90,
    "sla": {"availability_percent": 99.5, "latency_p95_ms": 500, "error_rate_percent": 1},
    "credits": [{"below_percent": 99.5, "credit_percent": 10}, {"below_percent": 99, "credit_percent": 25}],
    "credit_cap_percent": 50,
}
