"""Readiness checks: concurrent, each bounded by a timeout, cached briefly.

A check is any sync or async callable that returns truthy when the dependency is
usable and returns falsy or raises when it is not. Kubernetes probes every few
seconds from every node; the short cache plus single-flight (concurrent callers
share one run) keeps a probe flood from becoming a database flood. Error text is
redacted: a failing DSN must not print its password into a probe response.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from lightkeeper import catalogue
from lightkeeper.sdk import redact
from lightkeeper.sdk.metrics import family

Status = Literal["pass", "fail"]
CheckFn = Callable[[], Any]


@dataclass(frozen=True)
class Check:
    """A named readiness check. `timeout=None` uses the instrument() setting."""

    name: str
    fn: CheckFn
    timeout: float | None = None
    secrets: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    latency_ms: float
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "latency_ms": round(self.latency_ms, 2)}
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass(frozen=True)
class Report:
    status: Status
    checks: tuple[CheckResult, ...]
    checked_at: float

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "checks": {c.name: c.as_dict() for c in self.checks}}


def check(fn: CheckFn, *, name: str | None = None, timeout: float | None = None) -> Check:
    """Wrap a callable as a check; the name defaults to the function's name."""
    if isinstance(fn, Check):
        return fn
    if not callable(fn):
        raise TypeError(f"a health check must be callable, got {type(fn).__name__}")
    label = name or getattr(fn, "__name__", None) or type(fn).__name__
    return Check(name=str(label), fn=fn, timeout=timeout)


def _password_of(url: str) -> tuple[str, ...]:
    with contextlib.suppress(ValueError):
        password = urlsplit(url).password
        if password:
            return (password,)
    return ()


def postgres(target: Any, *, name: str = "postgres", timeout: float | None = None) -> Check:
    """`SELECT 1` through a SQLAlchemy engine (sync or async) or a PostgreSQL DSN."""
    if isinstance(target, str):
        return _dsn_check(target, name=name, timeout=timeout)
    return sqlalchemy(target, name=name, timeout=timeout)


def sqlalchemy(engine: Any, *, name: str = "database", timeout: float | None = None) -> Check:
    """`SELECT 1` through any SQLAlchemy engine, sync or async (SQLite included)."""
    from sqlalchemy import text

    url = engine.url.render_as_string(hide_password=False)
    if hasattr(engine, "sync_engine"):

        async def run_async() -> bool:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True

        return Check(name=name, fn=run_async, timeout=timeout, secrets=_password_of(url))

    def run_sync() -> bool:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True

    return Check(name=name, fn=run_sync, timeout=timeout, secrets=_password_of(url))


def _dsn_check(dsn: str, *, name: str, timeout: float | None) -> Check:
    """A DSN check keeps one connection and reconnects after a failure."""
    if "://" not in dsn:
        raise ValueError("health.postgres() needs a URL such as postgresql://user@host:5432/db")
    scheme, rest = dsn.split("://", 1)
    plain = f"{scheme.split('+', 1)[0]}://{rest}"  # psycopg wants no SQLAlchemy driver suffix
    holder: dict[str, Any] = {}

    async def run() -> bool:
        import psycopg

        conn = holder.get("conn")
        if conn is None or conn.closed:
            conn = await psycopg.AsyncConnection.connect(plain, autocommit=True, connect_timeout=10)
            holder["conn"] = conn
        try:
            await conn.execute("SELECT 1")
        except BaseException:
            holder.pop("conn", None)
            with contextlib.suppress(Exception):
                await conn.close()
            raise
        return True

    return Check(name=name, fn=run, timeout=timeout, secrets=_password_of(dsn))


def redis(target: Any, *, name: str = "redis", timeout: float | None = None) -> Check:
    """`PING` through a redis-py asyncio client or a redis:// URL."""
    secrets: tuple[str, ...] = ()
    if isinstance(target, str):
        import redis.asyncio as aioredis

        secrets = _password_of(target)
        client = aioredis.from_url(
            target, socket_connect_timeout=timeout or 2.0, socket_timeout=timeout or 2.0
        )
    else:
        client = target

    async def run() -> bool:
        result: Any = client.ping()
        if inspect.isawaitable(result):
            result = await result
        return bool(result)

    return Check(name=name, fn=run, timeout=timeout, secrets=secrets)


async def _run_one(item: Check, default_timeout: float) -> CheckResult:
    limit = item.timeout or default_timeout
    start = time.perf_counter()
    error: str | None = None
    try:
        if inspect.iscoroutinefunction(item.fn):
            ok = await asyncio.wait_for(item.fn(), limit)
        else:
            # A sync check cannot be cancelled, but the caller stops waiting on time;
            # the worker thread finishes in the background.
            result = asyncio.get_running_loop().run_in_executor(None, item.fn)
            ok = await asyncio.wait_for(result, limit)
            if inspect.isawaitable(ok):
                ok = await asyncio.wait_for(_awaited(ok), limit)
        if not ok:
            error = "check returned a falsy value"
    except TimeoutError:
        error = f"timed out after {limit:g}s"
    except Exception as exc:
        error = _safe_error(exc, item.secrets)
    elapsed = time.perf_counter() - start
    return CheckResult(item.name, "fail" if error else "pass", elapsed * 1000.0, error)


async def _awaited(value: Awaitable[Any]) -> Any:
    return await value


def _safe_error(exc: BaseException, secrets: Sequence[str]) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    for secret in secrets:
        if secret:
            text = text.replace(secret, redact.MASK)
    return redact.redact_text(text)[:500]


class HealthChecks:
    """The checks of one instrumented app, with caching and single-flight."""

    def __init__(self, checks: Iterable[Any], *, timeout: float, cache_seconds: float) -> None:
        self.checks = tuple(check(c) for c in checks)
        names = [c.name for c in self.checks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"health check names must be unique; pass name=... for: {', '.join(dupes)}")
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self._last: Report | None = None
        self._running: asyncio.Future[Report] | None = None

    async def run(self) -> Report:
        last = self._last
        now = time.monotonic()
        if last is not None and now - last.checked_at < self.cache_seconds:
            return last
        if self._running is not None and not self._running.done():
            return await asyncio.shield(self._running)
        self._running = asyncio.ensure_future(self._run_all())
        return await asyncio.shield(self._running)

    async def _run_all(self) -> Report:
        results = await asyncio.gather(*(_run_one(c, self.timeout) for c in self.checks))
        up = family(catalogue.HEALTH_CHECK_UP)
        duration = family(catalogue.HEALTH_CHECK_DURATION)
        for r in results:
            up.labels(r.name).set(1.0 if r.status == "pass" else 0.0)
            duration.labels(r.name).observe(r.latency_ms / 1000.0)
        status: Status = "fail" if any(r.status == "fail" for r in results) else "pass"
        report = Report(status=status, checks=tuple(results), checked_at=time.monotonic())
        self._last = report
        return report
