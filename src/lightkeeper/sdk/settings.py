"""Settings for the in-service SDK: `LIGHTKEEPER_*` environment variables, overridden
by the keyword arguments of `instrument()`.

A bad value fails at start-up, naming the setting and the environment variable, so a
typo in a deployment manifest is found when the pod starts rather than in an incident.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lightkeeper.sdk.redact.keys import custom_keys
from lightkeeper.sdk.redact.text import custom_patterns
from lightkeeper.sdk.usage_declarations import parse as parse_usage_events

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
    # The service's own secrets, masked in every sink like the built-in ones: key names
    # (any case and separators, also inside longer names) and regular expressions
    # matched in all text. JSON lists in the environment.
    redact_keys: tuple[str, ...] = ()
    redact_patterns: tuple[str, ...] = ()

    # Request ids
    request_id_header: str = "X-Request-ID"

    # Health. The readiness answer must arrive inside Kubernetes' default probe timeout
    # (1 s), or the kubelet gives up before reading the 503: each check stops at its
    # timeout, and checks still running at the deadline are reported as timed out.
    health_path: str = "/health"
    health_deadline_seconds: float = Field(0.9, gt=0.0, le=60.0)
    health_timeout_seconds: float = Field(0.8, gt=0.0, le=60.0)
    health_cache_seconds: float = Field(1.0, ge=0.0, le=300.0)
    # Who sees each check's error text and latency on /health and /health/ready (they
    # name hosts and roles): "token": callers sending the metrics token; "always";
    # "never". Everyone else gets pass/fail only.
    health_details: Literal["always", "token", "never"] = "token"

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

    # Usage events: the names lightkeeper.usage() may count, as a list, or a mapping of
    # name -> label -> allowed values (JSON in the environment). Empty: any well-formed
    # name is counted, up to a cap per process.
    usage_events: Mapping[str, Mapping[str, Sequence[str]]] | Sequence[str] = ()
    # A usage() or auth_attempt() call the declaration does not allow raises (True) or
    # is dropped and counted (False). Default: raise when environment is test or dev.
    usage_strict: bool | None = None

    # LLM calls (lightkeeper.sdk.llm). `llm`: patch every OpenAI and Anthropic client
    # class at instrument(). Prompt and completion text stays off spans unless
    # `llm_capture_content`, and is redacted when on. `llm_operations`: the operation
    # names `llm_operation()` may use as a label (empty: any, capped); others read
    # "other". `llm_prices`: negotiated rates in USD per million tokens, by model,
    # with keys input, output and optionally cached_input and cache_write.
    llm: bool = False
    llm_capture_content: bool = False
    llm_operations: tuple[str, ...] = ()
    llm_max_models: int = Field(32, ge=1, le=512)
    llm_prices: dict[str, dict[str, float]] = Field(default_factory=dict)
    # Salt of the user-id hash on cost events; unset: a random salt per process.
    llm_user_salt: str | None = Field(None, repr=False)
    # Cost events shipped to the Lightkeeper server's ingest API (`POST /api/llm/events`)
    # when `llm_events_url` is set (the server's base URL), with `llm_events_token` as the
    # bearer token. They wait in a bounded buffer (beyond it they are dropped and counted)
    # and are sent in batches from a background thread at most this often.
    llm_events_url: str | None = None
    llm_events_token: str | None = Field(None, repr=False)
    llm_events_buffer_size: int = Field(10_000, ge=1, le=1_000_000)
    llm_events_batch_size: int = Field(500, ge=1, le=1000)
    llm_events_flush_interval_seconds: float = Field(5.0, gt=0.0, le=300.0)

    # Browser RUM (lightkeeper.sdk.rum): the middleware serves the snippet at
    # `rum_script_path` and takes its beacons at `rum_path`. Beacons over the size
    # limit, from bots, or beyond the per-client rate are refused unrecorded.
    rum_enabled: bool = False
    rum_path: str = "/lightkeeper/rum"
    rum_script_path: str = "/lightkeeper/rum.js"
    rum_max_beacon_bytes: int = Field(8192, ge=1024, le=65536)
    rum_beacons_per_minute: int = Field(30, ge=1, le=6000)

    @field_validator("metrics_path", "health_path", "rum_path", "rum_script_path")
    @classmethod
    def _absolute_path(cls, value: str) -> str:
        if not value.startswith("/") or len(value) < 2:
            raise ValueError("must be an absolute URL path such as '/metrics'")
        return value.rstrip("/")

    @field_validator("otlp_endpoint", "sentry_dsn", "llm_events_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("redact_keys")
    @classmethod
    def _redact_keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        custom_keys(value)  # the redaction's own check, so both agree on what is usable
        return value

    @field_validator("redact_patterns")
    @classmethod
    def _redact_patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        custom_patterns(value)
        return value

    @field_validator("llm_prices")
    @classmethod
    def _llm_prices(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        allowed = {"input", "output", "cached_input", "cache_write"}
        for model, rates in value.items():
            if not model.strip():
                raise ValueError("model names must not be empty")
            if not {"input", "output"} <= set(rates) or not set(rates) <= allowed:
                raise ValueError(
                    f"prices for {model!r} need input and output, optionally cached_input and cache_write"
                )
            if any(rate < 0 for rate in rates.values()):
                raise ValueError(f"prices for {model!r} must not be negative")
        return {model.strip().lower(): dict(rates) for model, rates in value.items()}

    @field_validator("usage_events")
    @classmethod
    def _usage_events(
        cls, value: Mapping[str, Mapping[str, Sequence[str]]] | Sequence[str]
    ) -> Mapping[str, Mapping[str, Sequence[str]]] | Sequence[str]:
        parse_usage_events(value)  # the same check declare_usage() makes
        return value

    @field_validator("request_id_header")
    @classmethod
    def _header_name(cls, value: str) -> str:
        if not value or not all(c.isalnum() or c == "-" for c in value):
            raise ValueError("must be an HTTP header name made of letters, digits and '-'")
        return value

    @model_validator(mode="before")
    @classmethod
    def _timeout_follows_a_shorter_deadline(cls, data: Any) -> Any:
        # Lowering only the deadline lowers the default check timeout with it; a
        # timeout set explicitly beyond the deadline is an error (below).
        if isinstance(data, dict) and "health_timeout_seconds" not in data:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                deadline = float(data["health_deadline_seconds"])
                default = cls.model_fields["health_timeout_seconds"].default
                if 0.0 < deadline < default:
                    data = {**data, "health_timeout_seconds": deadline}
        return data

    @field_validator("health_timeout_seconds")
    @classmethod
    def _within_deadline(cls, value: float, info: ValidationInfo) -> float:
        deadline = info.data.get("health_deadline_seconds")
        if deadline is not None and value > deadline:
            raise ValueError(
                f"must not exceed health_deadline_seconds ({deadline:g}, "
                f"{ENV_PREFIX}HEALTH_DEADLINE_SECONDS): a check still running at the deadline "
                "is reported as timed out anyway"
            )
        return value

    @property
    def effective_usage_strict(self) -> bool:
        """Strict where a developer sees the error (test, dev), lenient elsewhere."""
        if self.usage_strict is not None:
            return self.usage_strict
        return self.environment.lower() in {"test", "dev"}

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
