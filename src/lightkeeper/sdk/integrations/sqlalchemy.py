"""SQLAlchemy engines (sync and async): query latency, slow queries, errors, pool.

    import lightkeeper
    lightkeeper.instrument_sqlalchemy(engine)                    # Engine or AsyncEngine
    lightkeeper.instrument_sqlalchemy(engine, pool="billing", slow_query_seconds=0.5)

Built on SQLAlchemy's own events (cursor execute, handle_error, pool checkout and
checkin), never on the DBAPI driver, so psycopg, asyncpg and SQLite behave alike;
an AsyncEngine is instrumented through its `sync_engine`, where the events fire.

Labels: `operation` and `table` come from the statement text (see
`_labels.sql_labels`), cached per statement and capped. A statement slower than
the threshold is counted and logged once at WARNING with its text as the driver
received it: placeholders, never parameter values; literals written into raw SQL
are masked as well.

The pool name defaults to the database name from the engine URL (never the URL
itself, which may hold a password).
"""

from __future__ import annotations

import re
import time
import weakref
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

from lightkeeper import catalogue
from lightkeeper.sdk.integrations import _labels, patching
from lightkeeper.sdk.metrics import family

__all__ = ["instrument_sqlalchemy", "uninstrument_sqlalchemy"]

_START = "_lightkeeper_start"
_POOL_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
# Literals in hand-written SQL: quoted strings and bare numbers (not `$1` or `:p1`).
_STRING_LITERAL = re.compile(r"'(?:[^']|'')*'")
_NUMBER_LITERAL = re.compile(r"(?<![\w$:])\d+(?:\.\d+)?(?![\w])")
MAX_LOGGED_STATEMENT = 2000

# Engine -> the listeners attached to it, so instrumenting is idempotent and
# reversible. Weak keys: instrumenting must not keep a disposed engine alive.
_instrumented: weakref.WeakKeyDictionary[Any, list[tuple[str, Callable[..., Any]]]] = (
    weakref.WeakKeyDictionary()
)
_query_children: dict[tuple[str, str], Any] = {}
_slow_children: dict[tuple[str, str], Any] = {}
_error_children: dict[str, Any] = {}


def _load() -> Any:
    patching.require(
        "sqlalchemy",
        integration="sqlalchemy",
        distribution="SQLAlchemy",
        minimum="2.0",
        below="3",
        extra="sqlalchemy",
    )
    import sqlalchemy.event

    return sqlalchemy


def instrument_sqlalchemy(
    engine: Any, *, pool: str | None = None, slow_query_seconds: float | None = None
) -> None:
    """Attach metrics to `engine` (sync or async); a second call is a no-op.

    `pool` names the engine in the pool gauges (default: the database name);
    `slow_query_seconds` defaults to the `slow_query_seconds` setting (1 s).
    """
    sqlalchemy = _load()
    sync_engine = getattr(engine, "sync_engine", engine)
    if sync_engine in _instrumented:
        return
    if slow_query_seconds is None:
        from lightkeeper.sdk.settings import current_settings

        slow_query_seconds = current_settings().slow_query_seconds
    if slow_query_seconds <= 0:
        raise ValueError("slow_query_seconds must be greater than 0")
    name = pool or pool_name(sync_engine.url)
    if not _POOL_NAME.fullmatch(name):
        raise ValueError(f"pool name {name!r} must be a short identifier (letters, digits, _ . : -)")

    listeners: list[tuple[str, Callable[..., Any]]] = [
        ("before_cursor_execute", _before_execute),
        ("after_cursor_execute", _after_execute_hook(slow_query_seconds, name)),
        ("handle_error", _on_error),
        *_pool_listeners(sync_engine, name),
    ]
    for event_name, fn in listeners:
        sqlalchemy.event.listen(sync_engine, event_name, fn)
    patching.patch_instance(sync_engine, "raw_connection", _wait_timer(name))
    _instrumented[sync_engine] = listeners
    _set_max(sync_engine.pool, name)
    patching.instrumented("sqlalchemy", engine)


def uninstrument_sqlalchemy(engine: Any) -> None:
    sqlalchemy = _load()
    sync_engine = getattr(engine, "sync_engine", engine)
    listeners = _instrumented.pop(sync_engine, None)
    if listeners is None:
        return
    for event_name, fn in listeners:
        sqlalchemy.event.remove(sync_engine, event_name, fn)
    patching.unpatch_instance(sync_engine, "raw_connection")
    patching.uninstrumented("sqlalchemy", engine)


def pool_name(url: Any) -> str:
    """The database name (a file's stem for SQLite), else the backend name."""
    database = url.database or ""
    if database and database != ":memory:":
        database = PurePath(database).stem if ("/" in database or "\\" in database) else database
        if _POOL_NAME.fullmatch(database):
            return str(database)
    return str(url.get_backend_name())


def statement_for_log(statement: str) -> str:
    """The statement with any literal masked, cut to a bounded length."""
    masked = _NUMBER_LITERAL.sub("?", _STRING_LITERAL.sub("'?'", statement[: MAX_LOGGED_STATEMENT * 2]))
    return masked[:MAX_LOGGED_STATEMENT]


# --- queries --------------------------------------------------------------------------


def _before_execute(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
) -> None:
    if context is not None:
        setattr(context, _START, time.perf_counter())


def _query_child(labels: tuple[str, str]) -> Any:
    child = _query_children.get(labels)
    if child is None:
        child = _query_children[labels] = family(catalogue.DB_QUERY_DURATION).labels(*labels)
    return child


def _after_execute_hook(threshold: float, pool: str) -> Callable[..., None]:
    def after_cursor_execute(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        start = getattr(context, _START, None)
        if start is None:
            return
        elapsed = time.perf_counter() - start
        labels = _labels.sql_labels(statement)
        _query_child(labels).observe(elapsed)
        if elapsed >= threshold:
            _slow_query(labels, statement, elapsed, threshold, pool)

    return after_cursor_execute


def _slow_query(labels: tuple[str, str], statement: str, elapsed: float, threshold: float, pool: str) -> None:
    child = _slow_children.get(labels)
    if child is None:
        child = _slow_children[labels] = family(catalogue.DB_SLOW_QUERIES).labels(*labels)
    child.inc()
    import structlog

    structlog.get_logger("lightkeeper.sqlalchemy").warning(
        "slow_query",
        operation=labels[0],
        table=labels[1],
        pool=pool,
        duration_seconds=round(elapsed, 4),
        threshold_seconds=threshold,
        statement=statement_for_log(statement),
    )


def _on_error(ctx: Any) -> None:
    # A failed pre-ping is SQLAlchemy recovering a stale pooled connection on its own;
    # the caller never sees it, so it is not an error of the application.
    if getattr(ctx, "is_pre_ping", False):
        return
    exc = ctx.original_exception if ctx.original_exception is not None else ctx.sqlalchemy_exception
    error_type = _labels.exception_type(_driver_error(exc)) if exc is not None else _labels.OTHER
    child = _error_children.get(error_type)
    if child is None:
        child = _error_children[error_type] = family(catalogue.DB_ERRORS).labels(error_type)
    child.inc()


def _driver_error(exc: BaseException) -> BaseException:
    """The driver's own exception behind SQLAlchemy's DBAPI adapters (asyncpg, aiosqlite).

    Those adapters re-raise every driver error as a generic `Error`/`ProgrammingError`
    of their own; the driver's class (`UndefinedTableError`, `ConnectionDoesNotExistError`)
    is the useful label, and it is what psycopg gives directly.
    """
    cause = exc.__cause__
    if cause is not None and type(exc).__module__.startswith("sqlalchemy."):
        return cause
    return exc


# --- pool -----------------------------------------------------------------------------


def _set_max(pool: Any, name: str) -> None:
    size = getattr(pool, "size", None)
    overflow = getattr(pool, "_max_overflow", None)
    if callable(size) and isinstance(overflow, int) and overflow >= 0:
        family(catalogue.DB_CONNECTIONS_MAX).labels(name).set(size() + overflow)
    elif type(pool).__name__ == "StaticPool":
        family(catalogue.DB_CONNECTIONS_MAX).labels(name).set(1)


def _pool_listeners(engine: Any, name: str) -> list[tuple[str, Callable[..., Any]]]:
    """Pool gauges, updated on checkout and checkin rather than at scrape time.

    A scrape-time callback would be invisible in multi-process mode (prometheus-client
    reads every worker's values from files there). QueuePool knows its counts, but the
    checkin event fires just *before* the connection goes back, hence the +-1; pools
    without counts (NullPool) are tracked by increments.
    """
    active = family(catalogue.DB_CONNECTIONS_ACTIVE).labels(name)
    idle = family(catalogue.DB_CONNECTIONS_IDLE).labels(name)

    def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        pool = engine.pool
        if hasattr(pool, "checkedout"):
            active.set(pool.checkedout())
            idle.set(pool.checkedin())
        else:
            active.inc()

    def checkin(dbapi_connection: Any, record: Any) -> None:
        pool = engine.pool
        if hasattr(pool, "checkedout"):
            active.set(max(pool.checkedout() - 1, 0))
            idle.set(min(pool.checkedin() + 1, pool.size()))
        else:
            active.dec()

    return [("checkout", checkout), ("checkin", checkin)]


def _wait_timer(name: str) -> Callable[[Any], Any]:
    wait = family(catalogue.DB_CONNECTION_WAIT).labels(name)

    def make(raw_connection: Any) -> Any:
        def raw_connection_timed(self: Any) -> Any:
            # Observed on failure too: a checkout that timed out waited the longest.
            start = time.perf_counter()
            try:
                return raw_connection(self)
            finally:
                wait.observe(time.perf_counter() - start)

        return raw_connection_timed

    return make
