"""Readiness checks: concurrent, each bounded by a timeout, the whole run by a
deadline, cached briefly, and each change of a check's state logged once.

A check is any sync or async callable that returns truthy when the dependency is
usable and returns falsy or raises when it is not. Kubernetes probes every few
seconds from every node; the short cache plus single-flight (concurrent callers
share one run) keeps a probe flood from becoming a database flood. Error text is
redacted: a failing DSN must not print its password into a log line or a response.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import structlog

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

    def as_dict(self, details: bool = True) -> dict[str, Any]:
        """`details=False`: the status alone; error text names hosts and roles."""
        if not details:
            return {"status": self.status}
        out: dict[str, Any] = {"status": self.status, "latency_ms": round(self.latency_ms, 2)}
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass(frozen=True)
class Report:
    status: Status
    checks: tuple[CheckResult, ...]
    checked_at: float

    def as_dict(self, details: bool = True) -> dict[str, Any]:
        return {"status": self.status, "checks": {c.name: c.as_dict(details) for c in self.checks}}


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
    # Imported here, at start-up: importing inside the check would block the event loop
    # for the first probe, eating into the readiness deadline.
    import psycopg

    async def run() -> bool:
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
        # A backstop only: the runner stops waiting at the check's timeout.
        client = aioredis.from_url(
            target, socket_connect_timeout=timeout or 1.0, socket_timeout=timeout or 1.0
        )
    else:
        client = target

    async def run() -> bool:
        result: Any = client.ping()
        if inspect.isawaitable(result):
            result = await result
        return bool(result)

    return Check(name=name, fn=run, timeout=timeout, secrets=secrets)


class _StillRunningError(Exception):
    """A sync check's thread from an earlier probe has not returned yet."""


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the runner stopped waiting
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


async def _in_thread(item: Check, busy: set[str]) -> Any:
    """Run a sync check in its own daemon thread, at most one at a time per check.

    A sync check cannot be cancelled: the runner stops waiting on time and the thread
    finishes in the background. Without a bound, a dependency that hangs would strand
    one thread per probe, fill the event loop's default executor (which also resolves
    host names for asyncio) and, being non-daemon there, block the process's exit.
    """
    if item.name in busy:
        raise _StillRunningError("still running since an earlier probe")
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def work() -> None:
        try:
            result: Any = item.fn()
        except Exception as exc:  # handed to the awaiting coroutine, reported there
            outcome: tuple[Any, BaseException | None] = (None, exc)
        else:
            outcome = (result, None)
        finally:
            busy.discard(item.name)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(_settle, future, *outcome)

    busy.add(item.name)
    try:
        threading.Thread(target=work, name=f"lightkeeper-health-{item.name}", daemon=True).start()
    except BaseException:
        busy.discard(item.name)
        raise
    return await future


async def _run_one(item: Check, default_timeout: float, busy: set[str]) -> CheckResult:
    limit = item.timeout or default_timeout
    start = time.perf_counter()
    error: str | None = None
    try:
        if inspect.iscoroutinefunction(item.fn):
            ok = await asyncio.wait_for(item.fn(), limit)
        else:
            ok = await asyncio.wait_for(_in_thread(item, busy), limit)
            if inspect.isawaitable(ok):
                ok = await asyncio.wait_for(_awaited(ok), limit)
        if not ok:
            error = "check returned a falsy value"
    except TimeoutError:
        error = f"timed out after {limit:g}s"
    except _StillRunningError as exc:
        error = f"timed out: {exc}"
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


class _Transitions:
    """Each check's last status, so an operator reads one log line per change.

    Probes arrive every few seconds from every node; a line per probe would bury the
    one that matters. The first run logs only a failure (a check that starts healthy
    is the normal case); after that, each pass->fail and fail->pass logs once, with
    the redacted reason, so a 503 seen by the orchestrator always has a log line.
    """

    def __init__(self) -> None:
        self._status: dict[str, Status] = {}
        self._failing_since: dict[str, float] = {}

    def observe(self, results: Iterable[CheckResult], now: float) -> None:
        for result in results:
            before = self._status.get(result.name)
            self._status[result.name] = result.status
            if result.status == before or (before is None and result.status == "pass"):
                continue
            log = structlog.get_logger("lightkeeper.health")
            if result.status == "fail":
                self._failing_since[result.name] = now
                log.warning(
                    "health_check_failed",
                    check=result.name,
                    reason=result.error,
                    previous_status=before or "unknown",
                )
            else:
                since = self._failing_since.pop(result.name, now)
                failed_for = round(now - since, 3)
                log.info("health_check_recovered", check=result.name, failed_for_seconds=failed_for)


class HealthChecks:
    """The checks of one instrumented app, with caching, single-flight and a deadline.

    `deadline` bounds the whole readiness answer: a check still running then (one that
    ignores cancellation, or a thread blocked in a driver) is reported as timed out, so
    the orchestrator gets its 503 before its own probe timeout gives up on us.
    """

    def __init__(
        self,
        checks: Iterable[Any],
        *,
        timeout: float,
        cache_seconds: float,
        deadline: float | None = None,
    ) -> None:
        self.checks = tuple(check(c) for c in checks)
        names = [c.name for c in self.checks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"health check names must be unique; pass name=... for: {', '.join(dupes)}")
        if deadline is not None:
            too_slow = [c for c in self.checks if c.timeout is not None and c.timeout > deadline]
            if too_slow:
                listed = ", ".join(f"{c.name} ({c.timeout:g}s)" for c in too_slow)
                raise ValueError(
                    f"health check timeout longer than the readiness deadline of {deadline:g}s: {listed}; "
                    "lower the check's timeout, or raise health_deadline_seconds "
                    "(LIGHTKEEPER_HEALTH_DEADLINE_SECONDS) together with the probe's timeoutSeconds"
                )
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self.deadline = deadline
        self._last: Report | None = None
        self._running: asyncio.Future[Report] | None = None
        self._transitions = _Transitions()
        # Checks abandoned at the deadline, kept referenced until they finish unwinding.
        self._abandoned: set[asyncio.Future[CheckResult]] = set()
        # Names of sync checks whose thread is still running (see _in_thread).
        self._busy: set[str] = set()

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
        results = await self._results_by_deadline()
        up = family(catalogue.HEALTH_CHECK_UP)
        duration = family(catalogue.HEALTH_CHECK_DURATION)
        for r in results:
            up.labels(r.name).set(1.0 if r.status == "pass" else 0.0)
            duration.labels(r.name).observe(r.latency_ms / 1000.0)
        status: Status = "fail" if any(r.status == "fail" for r in results) else "pass"
        report = Report(status=status, checks=tuple(results), checked_at=time.monotonic())
        self._transitions.observe(results, report.checked_at)
        self._last = report
        return report

    async def _results_by_deadline(self) -> list[CheckResult]:
        if not self.checks:
            return []
        start = time.perf_counter()
        tasks = [asyncio.ensure_future(_run_one(c, self.timeout, self._busy)) for c in self.checks]
        _, pending = await asyncio.wait(tasks, timeout=self.deadline)
        results: list[CheckResult] = []
        for item, task in zip(self.checks, tasks, strict=True):
            if task not in pending:
                results.append(task.result())
                continue
            task.cancel()
            self._abandoned.add(task)
            task.add_done_callback(self._abandoned.discard)
            elapsed_ms = (time.perf_counter() - start) * 1000.0
            error = f"timed out after {self.deadline:g}s (readiness deadline)"
            results.append(CheckResult(item.name, "fail", elapsed_ms, error))
        return results
