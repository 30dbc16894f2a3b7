"""Lightkeeper: production observability for Python SaaS backends.

    import lightkeeper
    lightkeeper.instrument(app, service="api", environment="prod", version="1.4.2")

The public surface is this module plus `lightkeeper.health`, `lightkeeper.testing`,
`lightkeeper.tracing`, `lightkeeper.celery`, `lightkeeper.redaction`, `lightkeeper.workflow`
and `lightkeeper.multiprocess`; `lightkeeper.sdk` is the implementation behind them.

Importing this package imports nothing but its version: each public name is loaded on
first use (PEP 562). The configuration generator, the CLI and scripts that only read the
catalogue import `lightkeeper` too, and must not pay for the SDK's runtime or have
prometheus-client, atexit or fork hooks changed behind their back; only `instrument()`
(and `instrument_celery()`) install process-wide hooks.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lightkeeper._version import __version__

if TYPE_CHECKING:  # what type checkers and IDEs see; at runtime `__getattr__` loads these
    from lightkeeper import celery, health, multiprocess, redaction, testing, tracing, workflow
    from lightkeeper.from_spec import llm_prices_from_spec, usage_events_from_spec
    from lightkeeper.sdk.context import bind, current_request_id
    from lightkeeper.sdk.dependencies import track_dependency
    from lightkeeper.sdk.error_reporting import capture_exception
    from lightkeeper.sdk.instrument import InstrumentOptions, instrument
    from lightkeeper.sdk.integrations.celery import instrument_celery
    from lightkeeper.sdk.integrations.httpx import instrument_httpx
    from lightkeeper.sdk.integrations.redis import instrument_redis
    from lightkeeper.sdk.integrations.requests import instrument_requests
    from lightkeeper.sdk.integrations.s3 import instrument_boto3
    from lightkeeper.sdk.integrations.smtp import instrument_smtp
    from lightkeeper.sdk.integrations.sqlalchemy import instrument_sqlalchemy
    from lightkeeper.sdk.llm import instrument_llm, llm_operation
    from lightkeeper.sdk.llm.anthropic import instrument_anthropic
    from lightkeeper.sdk.llm.openai import instrument_openai
    from lightkeeper.sdk.settings import SettingsError
    from lightkeeper.sdk.usage import UsageError, auth_attempt, cache_hit, cache_miss, declare_usage, usage
    from lightkeeper.sdk.workflow.sampler import instrument_workflow

# Public name -> the module that defines it. A test keeps this, `__all__` and the
# TYPE_CHECKING imports above in step.
_EXPORTS: dict[str, str] = {
    "InstrumentOptions": "lightkeeper.sdk.instrument",
    "SettingsError": "lightkeeper.sdk.settings",
    "bind": "lightkeeper.sdk.context",
    "cache_hit": "lightkeeper.sdk.usage",
    "cache_miss": "lightkeeper.sdk.usage",
    "capture_exception": "lightkeeper.sdk.error_reporting",
    "current_request_id": "lightkeeper.sdk.context",
    "instrument": "lightkeeper.sdk.instrument",
    "instrument_celery": "lightkeeper.sdk.integrations.celery",
    "instrument_httpx": "lightkeeper.sdk.integrations.httpx",
    "instrument_redis": "lightkeeper.sdk.integrations.redis",
    "instrument_requests": "lightkeeper.sdk.integrations.requests",
    "instrument_sqlalchemy": "lightkeeper.sdk.integrations.sqlalchemy",
    "instrument_anthropic": "lightkeeper.sdk.llm.anthropic",
    "instrument_llm": "lightkeeper.sdk.llm",
    "instrument_openai": "lightkeeper.sdk.llm.openai",
    "llm_operation": "lightkeeper.sdk.llm",
    "usage": "lightkeeper.sdk.usage",
    "UsageError": "lightkeeper.sdk.usage",
    "auth_attempt": "lightkeeper.sdk.usage",
    "declare_usage": "lightkeeper.sdk.usage",
    "track_dependency": "lightkeeper.sdk.dependencies",
    "instrument_boto3": "lightkeeper.sdk.integrations.s3",
    "instrument_smtp": "lightkeeper.sdk.integrations.smtp",
    "instrument_workflow": "lightkeeper.sdk.workflow.sampler",
    "usage_events_from_spec": "lightkeeper.from_spec",
    "llm_prices_from_spec": "lightkeeper.from_spec",
}
_SUBMODULES = frozenset({"celery", "health", "multiprocess", "redaction", "testing", "tracing", "workflow"})

__all__ = [
    "InstrumentOptions",
    "SettingsError",
    "UsageError",
    "__version__",
    "auth_attempt",
    "bind",
    "cache_hit",
    "cache_miss",
    "capture_exception",
    "celery",
    "current_request_id",
    "declare_usage",
    "health",
    "instrument",
    "instrument_anthropic",
    "instrument_boto3",
    "instrument_celery",
    "instrument_httpx",
    "instrument_llm",
    "instrument_openai",
    "instrument_redis",
    "instrument_requests",
    "instrument_smtp",
    "instrument_sqlalchemy",
    "instrument_workflow",
    "llm_operation",
    "llm_prices_from_spec",
    "multiprocess",
    "redaction",
    "testing",
    "tracing",
    "track_dependency",
    "usage",
    "usage_events_from_spec",
    "workflow",
]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    home = _EXPORTS.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
