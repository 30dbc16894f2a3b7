"""`lightkeeper.instrument(app)`: the one line a service adds.

For Starlette and FastAPI apps the middleware is placed around the app's whole
middleware stack (by wrapping `build_middleware_stack`, which Starlette calls once on
first use), so it is outermost without the user ordering anything. Any other ASGI
callable is wrapped and the wrapper returned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypedDict, Unpack

from lightkeeper import catalogue
from lightkeeper.sdk import lifecycle, multiprocess, redact, rum, usage, write_behind
from lightkeeper.sdk.health import Check
from lightkeeper.sdk.logs import configure_logging
from lightkeeper.sdk.metrics import family
from lightkeeper.sdk.middleware import LightkeeperMiddleware
from lightkeeper.sdk.runtime import Runtime
from lightkeeper.sdk.settings import Settings, load_settings, remember

_ATTR = "_lightkeeper_runtime"
_HTTP_SIGNALS = (
    catalogue.HTTP_REQUESTS,
    catalogue.HTTP_REQUEST_DURATION,
    catalogue.HTTP_REQUEST_SIZE,
    catalogue.HTTP_RESPONSE_SIZE,
    catalogue.HTTP_EXCEPTIONS,
    catalogue.HTTP_TIME_TO_FIRST_BYTE,
)


class AlreadyStartedError(RuntimeError):
    """instrument() was called after the app began serving."""


class InstrumentOptions(TypedDict, total=False):
    """The settings `instrument()` takes as keyword arguments, each overriding its
    `LIGHTKEEPER_<NAME>` environment variable; the README's configuration table says
    what each does.

    Spelled out (rather than `**settings: Any`) so that a misspelt or mistyped setting
    is an error in the user's type checker and IDE, not only at start-up. A test keeps
    it equal to the fields of `Settings`.
    """

    metrics_path: str
    metrics_token: str | None
    excluded_paths: Sequence[str]
    multiprocess_dir: str | None
    flush_interval_ms: int
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
    log_info_sample_rate: float
    access_log: bool
    configure_logging: bool
    quiet_loggers: Sequence[str]
    redact_emails: bool
    redact_keys: Sequence[str]
    redact_patterns: Sequence[str]
    request_id_header: str
    health_path: str
    health_deadline_seconds: float
    health_timeout_seconds: float
    health_cache_seconds: float
    health_details: Literal["always", "token", "never"]
    otlp_endpoint: str | None
    otlp_timeout_seconds: float
    trace_sample_rate: float | None
    sentry_dsn: str | None
    sentry_traces_sample_rate: float
    sentry_profiles_sample_rate: float
    sentry_timeout_seconds: float
    sentry_local_variables: Literal["none", "app", "all"]
    sentry_events_per_fingerprint_per_minute: int
    slow_query_seconds: float
    usage_events: Mapping[str, Mapping[str, Sequence[str]]] | Sequence[str]
    usage_strict: bool | None
    llm: bool
    llm_capture_content: bool
    llm_operations: Sequence[str]
    llm_max_models: int
    llm_prices: dict[str, dict[str, float]]
    llm_user_salt: str | None
    llm_events_url: str | None
    llm_events_token: str | None
    llm_events_buffer_size: int
    llm_events_batch_size: int
    llm_events_flush_interval_seconds: float
    rum_enabled: bool
    rum_path: str
    rum_script_path: str
    rum_max_beacon_bytes: int
    rum_beacons_per_minute: int


def instrument(
    app: Any,
    *,
    service: str | None = None,
    environment: str | None = None,
    version: str | None = None,
    checks: Iterable[Check | Callable[[], Any]] = (),
    **settings: Unpack[InstrumentOptions],
) -> Any:
    """Make an ASGI app observable: metrics, JSON logs, request ids, health.

    Keyword arguments override `LIGHTKEEPER_*` environment variables (see
    `InstrumentOptions` and the README's configuration table). Returns the app (for
    Starlette/FastAPI the same object, instrumented in place). Calling it again on the
    same app replaces the configuration; calling it on several apps is fine.

    This is where Lightkeeper changes the process (never at import): it installs its
    exit and fork hooks, and in a multi-worker server switches prometheus-client to
    file-backed values.
    """
    config = load_settings(service=service, environment=environment, version=version, **settings)
    remember(config)
    # Redaction first, so nothing below logs under yesterday's rules (lifecycle.start
    # applies the same settings again for processes that never call instrument()).
    redact.configure(
        redact_emails=config.redact_emails, keys=config.redact_keys, patterns=config.redact_patterns
    )
    # Before the first metric object exists: in a multi-worker server every metric
    # must be file-backed from the start.
    multiprocess.activate_if_needed(config.multiprocess_dir)
    write_behind.install_process_hooks()
    runtime = Runtime(config, checks)
    if config.configure_logging:
        configure_logging(config)
    family(catalogue.BUILD_INFO).labels(config.service, config.environment, config.version).set(1)
    for signal in _HTTP_SIGNALS:
        family(signal)  # exposed (HELP/TYPE) from the first scrape, before any request
    for hook in _setup_hooks:
        hook(app, config, runtime)
    if config.llm:
        from lightkeeper.sdk.llm import instrument_llm

        instrument_llm()
    elif config.llm_events_url:
        from lightkeeper.sdk.llm.shipper import install

        install(config)

    if not hasattr(app, "build_middleware_stack"):
        return LightkeeperMiddleware(app, runtime)

    if getattr(app, "middleware_stack", None) is not None:
        raise AlreadyStartedError(
            "lightkeeper.instrument(app) was called after the app started serving (its middleware "
            "stack is already built). Call it right after creating the app - at module level next to "
            "`app = FastAPI()`, or inside your create_app() factory - not in a startup event, lifespan "
            "handler or request."
        )
    runtime.resolver.bind_routes(app.router.routes)
    _quiet_fastapi_native_telemetry(app)
    if getattr(app, _ATTR, None) is not None:
        setattr(app, _ATTR, runtime)  # already wrapped: the build below reads the newest runtime
        return app
    setattr(app, _ATTR, runtime)
    build = app.build_middleware_stack

    def build_with_lightkeeper() -> Any:
        return LightkeeperMiddleware(build(), getattr(app, _ATTR))

    app.build_middleware_stack = build_with_lightkeeper
    return app


def _quiet_fastapi_native_telemetry(app: Any) -> None:
    """Stop FastAPI's own OpenTelemetry HTTP metrics and error logs from doubling ours.

    FastAPI >= 0.142 records `http.server.*` metrics, exception logs and server spans
    (plus one span per dependency, endpoint and serialisation step) whenever an
    OpenTelemetry provider is configured. Lightkeeper records the metrics and logs, and
    its middleware makes the request's server span (see lightkeeper.sdk.server_span), so
    all of FastAPI's are switched off and its wrapper is skipped entirely.
    """
    config = getattr(app, "_telemetry", None)
    if isinstance(config, dict) and "metrics" in config:
        config["metrics"] = False
        config["logs"] = False
        config["tracing"] = False
        config["operation_spans"] = False


# SDK modules that join instrument(): each hook gets (app, settings, runtime).
_setup_hooks: list[Any] = [lifecycle.start_app, usage.configure_hook, rum.configure_hook]


def current_settings(app: Any) -> Settings | None:
    """The settings `app` was last instrumented with, or None when it never was."""
    runtime = getattr(app, _ATTR, None)
    return runtime.settings if runtime is not None else None
