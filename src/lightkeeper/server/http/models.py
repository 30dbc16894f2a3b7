"""Request and response bodies of the JSON API (they document `/openapi.json`)."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime

from cronsim import CronSim, CronSimError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_MAX_DURATION = 366 * 86400


class ProbeOut(BaseModel):
    name: str
    type: str
    component: str
    interval_seconds: int
    state: str = Field(description="up | down | unknown | maintenance")
    last_checked_at: str | None = Field(description="ISO-8601 UTC")
    last_latency_ms: float | None
    last_error: str | None = Field(description="null when up")
    ping_url: str | None = Field(None, description="heartbeat probes only")


class IncidentOut(BaseModel):
    id: int
    probe: str
    started_at: str
    resolved_at: str | None = Field(description="null while open")
    duration_seconds: float
    cause: str | None


class MaintenanceIn(BaseModel):
    """A one-off window (`starts_at` + `ends_at`) or a recurring one (`cron` + `duration_seconds`)."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    probes: list[str] = Field(default_factory=list, max_length=1000, description="Empty: every probe")
    starts_at: datetime = Field(description="ISO-8601 with offset; for a recurring window, when it begins")
    ends_at: datetime | None = Field(None, description="End of a one-off window, or of the recurrence")
    cron: str | None = Field(None, max_length=200, description="Start times of a recurring window")
    duration_seconds: int | None = Field(None, ge=60, le=_MAX_DURATION)
    timezone: str = Field("UTC", max_length=64, description="IANA time zone of `cron`")

    @field_validator("probes")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        if any(not name or len(name) > 200 for name in v):
            raise ValueError("probe names are 1-200 characters")
        return v

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and (v.tzinfo is None or v.utcoffset() is None):
            raise ValueError("give a time zone offset, e.g. 2026-11-03T02:00:00Z")
        try:
            return None if v is None else v.astimezone(UTC)
        except (OverflowError, ValueError):
            raise ValueError("this time cannot be expressed in UTC") from None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone {v!r} is not an IANA time zone such as Europe/Berlin") from None
        return v

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                CronSim(v, datetime(2000, 1, 1, tzinfo=UTC))
            except (CronSimError, ValueError):
                raise ValueError(f"cron {v!r} is not a cron expression, e.g. '0 2 * * 0'") from None
        return v

    @model_validator(mode="after")
    def _shape(self) -> MaintenanceIn:
        if self.cron is None:
            if self.ends_at is None:
                raise ValueError("a one-off window needs ends_at (or give cron and duration_seconds)")
            if self.duration_seconds is not None:
                raise ValueError("duration_seconds applies to recurring windows (with cron) only")
        elif self.duration_seconds is None:
            raise ValueError("a recurring window needs duration_seconds")
        if self.ends_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class MaintenanceOut(MaintenanceIn):
    id: int
