"""redis-py commands (sync and asyncio): duration and errors by command name.

    import lightkeeper
    lightkeeper.instrument_redis()          # every redis.Redis / redis.asyncio.Redis
    lightkeeper.instrument_redis(client)    # or one client (and the pipelines it creates)

The label is the command's name only, from a fixed list of Redis commands (unknown
ones share 'other'); keys, values and arguments never reach a label. A pipeline is
one round trip and is recorded once as PIPELINE. As for the other integrations,
the duration histogram holds completed commands and failures go to
`redis_command_errors_total` by exception class.

For application caches built on Redis, count hits and misses with
`lightkeeper.cache_hit("sessions")` / `lightkeeper.cache_miss("sessions")`.
"""

from __future__ import annotations

import inspect
import time
from typing import Any

from lightkeeper import catalogue
from lightkeeper.sdk.integrations import _labels, patching
from lightkeeper.sdk.metrics import family

__all__ = ["instrument_redis", "uninstrument_redis"]

_durations: dict[str, Any] = {}
_errors: dict[tuple[str, str], Any] = {}


def _load() -> Any:
    patching.require(
        "redis", integration="redis", distribution="redis", minimum="4.2", below="9", extra="redis"
    )
    import redis
    import redis.asyncio

    return redis


def instrument_redis(client: Any = None) -> None:
    """Record command metrics for one client, or for every client when `client` is None.

    Idempotent; instrumenting a client while every client is instrumented (or the
    reverse) still records each command once.
    """
    redis = _load()
    if client is None:
        changed = patching.patch_class(redis.Redis, "execute_command", _wrap_command)
        changed |= patching.patch_class(redis.asyncio.Redis, "execute_command", _wrap_async_command)
        changed |= patching.patch_class(redis.client.Pipeline, "execute", _wrap_pipeline)
        changed |= patching.patch_class(redis.asyncio.client.Pipeline, "execute", _wrap_async_pipeline)
    else:
        is_async = inspect.iscoroutinefunction(patching.original(type(client).execute_command))
        changed = patching.patch_instance(
            client, "execute_command", _wrap_async_command if is_async else _wrap_command
        )
        if hasattr(client, "pipeline"):
            changed |= patching.patch_instance(client, "pipeline", _wrap_pipeline_factory(is_async))
    if changed:
        patching.instrumented("redis", client)


def uninstrument_redis(client: Any = None) -> None:
    redis = _load()
    if client is None:
        patching.unpatch_class(redis.Redis, "execute_command")
        patching.unpatch_class(redis.asyncio.Redis, "execute_command")
        patching.unpatch_class(redis.client.Pipeline, "execute")
        patching.unpatch_class(redis.asyncio.client.Pipeline, "execute")
    else:
        patching.unpatch_instance(client, "execute_command")
        patching.unpatch_instance(client, "pipeline")
    patching.uninstrumented("redis", client)


def _duration(command: str) -> Any:
    child = _durations.get(command)
    if child is None:
        child = _durations[command] = family(catalogue.REDIS_COMMAND_DURATION).labels(command)
    return child


def _error(command: str, exc: BaseException) -> None:
    key = (command, _labels.exception_type(exc))
    child = _errors.get(key)
    if child is None:
        child = _errors[key] = family(catalogue.REDIS_COMMAND_ERRORS).labels(*key)
    child.inc()


def _wrap_command(execute_command: Any) -> Any:
    def execute_command_recorded(self: Any, *args: Any, **options: Any) -> Any:
        command = _labels.redis_command(args[0]) if args else _labels.OTHER
        start = time.perf_counter()
        try:
            result = execute_command(self, *args, **options)
        except Exception as exc:
            _error(command, exc)
            raise
        _duration(command).observe(time.perf_counter() - start)
        return result

    return execute_command_recorded


def _wrap_async_command(execute_command: Any) -> Any:
    async def execute_command_recorded(self: Any, *args: Any, **options: Any) -> Any:
        command = _labels.redis_command(args[0]) if args else _labels.OTHER
        start = time.perf_counter()
        try:
            result = await execute_command(self, *args, **options)
        except Exception as exc:
            _error(command, exc)
            raise
        _duration(command).observe(time.perf_counter() - start)
        return result

    return execute_command_recorded


def _wrap_pipeline(execute: Any) -> Any:
    def execute_recorded(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            result = execute(self, *args, **kwargs)
        except Exception as exc:
            _error("PIPELINE", exc)
            raise
        _duration("PIPELINE").observe(time.perf_counter() - start)
        return result

    return execute_recorded


def _wrap_async_pipeline(execute: Any) -> Any:
    async def execute_recorded(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            result = await execute(self, *args, **kwargs)
        except Exception as exc:
            _error("PIPELINE", exc)
            raise
        _duration("PIPELINE").observe(time.perf_counter() - start)
        return result

    return execute_recorded


def _wrap_pipeline_factory(is_async: bool) -> Any:
    """Pipelines of an instrumented client are new objects; instrument each one."""
    wrap = _wrap_async_pipeline if is_async else _wrap_pipeline

    def make(pipeline: Any) -> Any:
        def pipeline_recorded(self: Any, *args: Any, **kwargs: Any) -> Any:
            pipe = pipeline(self, *args, **kwargs)
            patching.patch_instance(pipe, "execute", wrap)
            return pipe

        return pipeline_recorded

    return make
