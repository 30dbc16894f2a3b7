"""`lightkeeper.instrument(app)`: the one line a service adds.

For Starlette and FastAPI apps the middleware is placed around the app's whole
middleware stack (by wrapping `build_middleware_stack`, which Starlette calls once on
first use), so it is outermost without the user ordering anything. Any other ASGI
callable is wrapped and the wrapper returned.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lightkeeper import catalogue
from lightkeeper.sdk import error_reporting, multiprocess, redact, tracing
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


def instrument(
    app: Any,
    *,
    service: str | None = None,
    environment: str | None = None,
    version: str | None = None,
    checks: Iterable[Any] = (),
    **settings: Any,
) -> Any:
    """Make an ASGI app observable: metrics, JSON logs, request ids, health.

    Keyword arguments override `LIGHTKEEPER_*` environment variables (see
    `lightkeeper.sdk.settings.Settings` for every setting). Returns the app (for
    Starlette/FastAPI the same object, instrumented in place). Calling it again on the
    same app replaces the configuration; calling it on several apps is fine.
    """
    config = load_settings(service=service, environment=environment, version=version, **settings)
    remember(config)
    redact.configure(redact_emails=config.redact_emails)
    # Before the first metric object exists: in a multi-worker server every metric
    # must be file-backed from the start.
    multiprocess.activate_if_needed(config.multiprocess_dir)
    runtime = Runtime(config, checks)
    if config.configure_logging:
        configure_logging(config)
    family(catalogue.BUILD_INFO).labels(config.service, config.environment, config.version).set(1)
    for signal in _HTTP_SIGNALS:
        family(signal)  # exposed (HELP/TYPE) from the first scrape, before any request
    for hook in _setup_hooks:
        hook(app, config, runtime)

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
    its middleware makes the request's server span (see lightkeeper.sdk.tracing), so
    all of FastAPI's are switched off and its wrapper is skipped entirely.
    """
    config = getattr(app, "_telemetry", None)
    if isinstance(config, dict) and "metrics" in config:
        config["metrics"] = False
        config["logs"] = False
        config["tracing"] = False
        config["operation_spans"] = False


# SDK modules that join instrument(): each hook gets (app, settings, runtime).
_setup_hooks: list[Any] = [tracing.setup_hook, error_reporting.setup_hook]


def current_settings(app: Any) -> Settings | None:
    runtime = getattr(app, _ATTR, None)
    return runtime.settings if runtime is not None else None
