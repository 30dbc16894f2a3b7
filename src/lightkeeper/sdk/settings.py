"""Settings for the in-service SDK: `LIGHTKEEPER_*` environment variables, overridden
by the keyword arguments of `instrument()`.

A bad value fails at start-up, naming the setting and the environment variable, so a
typo in a deployment manifest is found when the pod starts rather than in an incident.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

ENV_PREFIX = "LIGHTKEEPER_"


class SettingsError(ValueError):
    """A setting has a value Lightkeeper cannot use; the message names it."""


class Settings(BaseSettings):
    """Every knob of the SDK. Defaults are what a production service should run with."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    service: str = Field("app", min_length=1, max_length=64)
    environment: str = Field("dev", min_length=1, max_length=64)
    version: str = Field("0.0.0", min_length=1, max_length=64)

    # Metrics and exposition
    metrics_path: str = "/metrics"
    metrics_token: str | None = Field(None, repr=False)
    excluded_paths: tuple[str, ...] = ("/metrics", "/health", "/health/live", "/health/ready")
    multiprocess_dir: str | None = None

    # Request metrics and request lines are recorded in batches, at most this long
    # after the request ends (0: as each request ends). Reads of the metrics and
    # other log lines apply / write what waits first.
    flush_interval_ms: int = Field(50, ge=0, le=5000)

    # Logs
    log_level: LogLevel = "INFO"
    log_info_sample_rate: float = Field(1.0, ge=0.0, le=1.0)
    access_log: bool = True
    configure_logging: bool = True
    quiet_loggers: tuple[str, ...] = ("openai", "anthropic", "httpx", "httpcore", "urllib3")

    # Privacy: e-mail addresses in free text are masked too (off: often the id an
    # operator needs; on where addresses count as personal data you must not keep)
    redact_emails: bool = False

    # Request ids
    request_id_header: str = "X-Request-ID"

    # Health
    health_path: str = "/health"
    health_timeout_seconds: float = Field(2.0, gt=0.0, le=60.0)
    health_cache_seconds: float = Field(1.0, ge=0.0, le=300.0)

    # Traces and errors (used by lightkeeper.sdk.tracing / errors)
    otlp_endpoint: str | None = Field(None, repr=False)
    otlp_timeout_seconds: float = Field(5.0, gt=0.0, le=60.0)
    trace_sample_rate: float | None = Field(None, ge=0.0, le=1.0)
    sentry_dsn: str | None = Field(None, repr=False)
    sentry_traces_sample_rate: float = Field(0.0, ge=0.0, le=1.0)
    sentry_profiles_sample_rate: float = Field(0.0, ge=0.0, le=1.0)
    sentry_timeout_seconds: float = Field(5.0, gt=0.0, le=60.0)
    # Local variables in Sentry events. "none": never (a local may hold a request body
    # or a secret under any name); "app": the application's own frames, redacted;
    # "all": every frame (sentry-sdk's default, ~10x the cost per event).
    sentry_local_variables: Literal["none", "app", "all"] = "none"
    # Events sent per exception fingerprint (type + raising line) per minute; 0: no limit.
    sentry_events_per_fingerprint_per_minute: int = Field(10, ge=0)

    # Integrations
    slow_query_seconds: float = Field(1.0, gt=0.0)

    @field_validator("metrics_path", "health_path")
    @classmethod
    def _absolute_path(cls, value: str) -> str:
        if not value.startswith("/") or len(value) < 2:
            raise ValueError("must be an absolute URL path such as '/metrics'")
        return value.rstrip("/")

    @field_validator("otlp_endpoint", "sentry_dsn")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("request_id_header")
    @classmethod
    def _header_name(cls, value: str) -> str:
        if not value or not all(c.isalnum() or c == "-" for c in value):
            raise ValueError("must be an HTTP header name made of letters, digits and '-'")
        return value

    @property
    def effective_trace_sample_rate(self) -> float:
        """10 % in production, everything elsewhere, unless set explicitly."""
        if self.trace_sample_rate is not None:
            return self.trace_sample_rate
        return 0.1 if self.environment.lower() in {"prod", "production"} else 1.0


def load_settings(**overrides: Any) -> Settings:
    """Environment first, keyword arguments on top; errors name the setting.

    Keyword arguments equal to None are ignored so callers can forward optional
    parameters without erasing environment values.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(given) - set(Settings.model_fields))
    if unknown:
        known = ", ".join(sorted(Settings.model_fields))
        raise SettingsError(f"unknown lightkeeper setting(s) {', '.join(unknown)}; known settings: {known}")
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise SettingsError(_describe(exc, set(given))) from None


def _describe(exc: ValidationError, from_kwargs: set[str]) -> str:
    lines = ["invalid lightkeeper settings:"]
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else "?"
        source = (
            "instrument() argument"
            if name in from_kwargs
            else f"environment variable {ENV_PREFIX}{name.upper()}"
        )
        # Never echo the rejected value: it may be a token or a DSN.
        lines.append(f"  {name} ({source}): {err['msg']}")
    return "\n".join(lines)


_current: Settings | None = None


def remember(settings: Settings) -> None:
    """Record the settings of the latest `instrument()` call for the integrations."""
    global _current
    _current = settings


def current_settings() -> Settings:
    """The settings `instrument()` was given, so integrations set up later (httpx,
    SQLAlchemy, Celery) agree with it; the environment alone when it was not called."""
    return _current if _current is not None else load_settings()
