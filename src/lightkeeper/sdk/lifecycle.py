"""What a process sets up when it starts serving, in one place.

Two entry points start a process: `instrument(app)` in a web server, and a Celery
worker's start-up (a worker never calls `instrument()`). Both call `start()`, so
tracing and error reporting are configured the same way whichever starts first, and
no module reaches into another's privates to find the settings or the set-up
function. `start_app()` adds what belongs to one instrumented app: its server spans
and the middleware's exception hooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lightkeeper.sdk import error_reporting, redact, server_span
from lightkeeper.sdk.settings import Settings
from lightkeeper.sdk.trace_provider import configure_tracing

__all__ = ["Started", "start", "start_app"]


@dataclass(frozen=True)
class Started:
    """What `start()` configured in this process."""

    tracer_provider: Any  # where spans go; None when nothing records them
    sentry: bool  # a Sentry client (ours or the application's) receives errors


def start(settings: Settings) -> Started:
    """Configure the process-wide telemetry (redaction, traces, then Sentry); idempotent.

    Called again with other settings, it retunes what it set up before.
    """
    # Before any sink starts: a Celery worker never calls instrument(), yet its logs,
    # spans and Sentry events must honour the same custom redaction rules.
    redact.configure(
        redact_emails=settings.redact_emails, keys=settings.redact_keys, patterns=settings.redact_patterns
    )
    provider = configure_tracing(settings)
    return Started(tracer_provider=provider, sentry=error_reporting.configure_errors(settings))


def start_app(app: Any, settings: Settings, runtime: Any) -> None:
    """`instrument()`'s set-up hook: the process set-up, then this app's hooks."""
    started = start(settings)
    server_span.attach(runtime, started.tracer_provider)
    if started.sentry:
        error_reporting.attach(runtime)
