"""The background sampler behind `lightkeeper.instrument_workflow()`.

It runs in a thread of its own with an engine of its own (two pooled connections by default), so
sampling never takes a connection from the application's pool and never runs on a
request's path. Each entity and aggregate is sampled in its own read-only transaction
under a statement timeout: one that fails or overruns is counted and logged, and its
gauges keep their last good values while `workflow_sample_age_seconds` keeps growing,
so a dashboard shows stale numbers as stale instead of as a quiet system.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import structlog

from lightkeeper import catalogue
from lightkeeper.sdk import metrics
from lightkeeper.sdk.workflow import query
from lightkeeper.sdk.workflow.declarations import Aggregate, DeclarationError, Entity, check_unique

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["WorkflowSampler", "instrument_workflow"]

DEFAULT_INTERVAL_SECONDS = 60.0
DEFAULT_TIMEOUT_SECONDS = 10.0
# Two connections count two tables at once: on 1 M rows a sample then takes about what
# one bare count(*) of every table does (bench/workflow_sampler.py).
DEFAULT_CONNECTIONS = 2
MAX_CONNECTIONS = 8
# The sampler's engine speaks a synchronous driver; async drivers map to their sibling.
_SYNC_DRIVERS = {
    "asyncpg": "psycopg",
    "psycopg_async": "psycopg",
    "aiosqlite": "pysqlite",
    "aiomysql": "pymysql",
    "asyncmy": "pymysql",
}

log = structlog.get_logger("lightkeeper.workflow")
_active: list[WorkflowSampler] = []
_active_lock = threading.Lock()


class SamplerStopped(RuntimeError):
    """`sample_once()` on a sampler that was stopped."""


class WorkflowSampler:
    """A running (or hand-driven) sampler; `stop()` ends its thread and removes its series."""

    def __init__(
        self,
        engine: sa.Engine,
        owns_engine: bool,
        entities: Sequence[Entity],
        aggregates: Sequence[Aggregate],
        interval_seconds: float,
        timeout_seconds: float,
        connections: int = 1,
    ) -> None:
        self.entities = tuple(entities)
        self.connections = connections
        self.aggregates = tuple(aggregates)
        self.interval_seconds = interval_seconds
        self.timeout_seconds = timeout_seconds
        self._engine = engine
        self._owns_engine = owns_engine
        self._sources: dict[str, tuple[query.Source, sa.CompoundSelect[Any]]] = {}
        self._started = time.monotonic()
        self._last_success: dict[str, float] = {}
        self._sampling = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """Entity and aggregate names: the `entity` label of the age and error series."""
        return (*(e.label for e in self.entities), *(a.name for a in self.aggregates))

    def sample_once(self) -> bool:
        """Sample every entity and aggregate now; True when all succeeded.

        Up to `connections` connections take the statements from one list, each on its
        own thread, so the database counts several tables at once (on PostgreSQL, one
        backend process and CPU per connection).
        """
        jobs: list[tuple[str, Callable[[sa.Connection], None]]] = [
            (e.label, functools.partial(self._sample_entity, entity=e)) for e in self.entities
        ]
        jobs += [(a.name, functools.partial(self._sample_aggregate, aggregate=a)) for a in self.aggregates]
        with self._sampling:
            if self._stop.is_set():
                raise SamplerStopped("this workflow sampler is stopped; call instrument_workflow() again")
            began = time.monotonic()
            pending = jobs[::-1]
            taking = threading.Lock()

            def drain() -> list[bool] | Exception:
                try:
                    conn = self._engine.connect()
                except Exception as exc:
                    return exc
                done: list[bool] = []
                with conn:
                    while True:
                        with taking:
                            if not pending:
                                return done
                            name, job = pending.pop()
                        done.append(self._guard(conn, name, job))

            workers = max(1, min(self.connections, len(jobs)))
            if workers == 1:
                outcomes = [drain()]
            else:
                with ThreadPoolExecutor(workers, thread_name_prefix="lightkeeper-workflow") as pool:
                    outcomes = list(pool.map(lambda _: drain(), range(workers)))
            results = [ok for outcome in outcomes if isinstance(outcome, list) for ok in outcome]
            refused = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
            for name, _ in pending[::-1]:  # no connection could be opened to take these
                self._failed(name, refused[0], "connection", began)
                results.append(False)
            self.refresh_ages()
            return all(results)

    def refresh_ages(self) -> None:
        """Set `workflow_sample_age_seconds`; called before every read of the registry too."""
        if self._stop.is_set():
            return  # a scrape racing stop() must not bring the removed series back
        now = time.monotonic()
        age = metrics.family(catalogue.WORKFLOW_SAMPLE_AGE)
        for name in self.names:
            age.labels(name).set(round(now - self._last_success.get(name, self._started), 3))

    def start(self) -> None:
        """Start the background thread (`instrument_workflow` does, unless `background=False`)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="lightkeeper-workflow", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread, close the sampler's connections, and remove its gauge series.

        A sampler stopped mid-query waits at most `timeout` for it; the thread is a
        daemon, so the process can still exit if the database never answers.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with _active_lock:
            if self in _active:
                _active.remove(self)
        # A round still running would set the series again after their removal.
        finished = self._sampling.acquire(timeout=timeout)
        try:
            if self._owns_engine:
                self._engine.dispose()
            self._remove_series()
        finally:
            if finished:
                self._sampling.release()

    @property
    def running(self) -> bool:
        """True while the background thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                self.sample_once()
            except SamplerStopped:
                return  # stopped between the check above and the round
            except Exception:  # never let the thread die: the gauges would go stale unnoticed
                log.exception("workflow_sampler_crashed")
            self._stop.wait(max(0.0, self.interval_seconds - (time.monotonic() - began)))

    def _guard(self, conn: sa.Connection, name: str, sample: Callable[[sa.Connection], None]) -> bool:
        """Run one sample in its own guarded transaction; count and log a failure."""
        began = time.monotonic()
        try:
            with query.guarded(conn, self.timeout_seconds):
                sample(conn)
        except Exception as exc:
            self._failed(name, exc, query.error_reason(exc, connecting=False), began)
            return False
        self._last_success[name] = time.monotonic()
        return True

    def _failed(self, name: str, exc: BaseException, reason: str, began: float) -> None:
        metrics.family(catalogue.WORKFLOW_SAMPLE_ERRORS).labels(name, reason).inc()
        log.warning(
            "workflow_sample_failed",
            entity=name,
            reason=reason,
            error_type=type(exc).__name__,
            error=query.error_text(exc),
            duration_seconds=round(time.monotonic() - began, 3),
            stale_seconds=round(time.monotonic() - self._last_success.get(name, self._started), 1),
        )

    def _sample_entity(self, conn: sa.Connection, *, entity: Entity) -> None:
        found_once = self._sources.get(entity.label)
        if found_once is None:
            source = query.resolve(conn, entity)
            found_once = self._sources[entity.label] = (source, query.entity_query(entity, source))
        source, statement = found_once
        now = datetime.now(UTC)
        rows = conn.execute(statement, query.cutoffs(entity, source, now)).all()
        found = query.fold(entity, rows, now)
        name = entity.label
        entities = metrics.family(catalogue.WORKFLOW_ENTITIES)
        for status, count in found.counts.items():
            entities.labels(name, status).set(count)
        stuck = metrics.family(catalogue.WORKFLOW_STUCK_ENTITIES)
        for (status, threshold), count in found.stuck.items():
            stuck.labels(name, status, threshold).set(count)
        metrics.family(catalogue.WORKFLOW_OLDEST_PROCESSING_AGE).labels(name).set(found.oldest_processing_age)

    def _sample_aggregate(self, conn: sa.Connection, *, aggregate: Aggregate) -> None:
        value = query.aggregate_value(conn.execute(query.aggregate_statement(aggregate)).scalar())
        metrics.family(catalogue.WORKFLOW_AGGREGATE).labels(aggregate.name).set(value)

    def _remove_series(self) -> None:
        def drop(signal: catalogue.Signal, *labels: str) -> None:
            with contextlib.suppress(KeyError):  # never set: the sample failed from the start
                metrics.family(signal).remove(*labels)

        for entity in self.entities:
            for status in (*entity.statuses, catalogue.WORKFLOW_OTHER_STATUS):
                drop(catalogue.WORKFLOW_ENTITIES, entity.label, status)
            for status in entity.processing:
                for threshold, _ in entity.thresholds:
                    drop(catalogue.WORKFLOW_STUCK_ENTITIES, entity.label, status, threshold)
            drop(catalogue.WORKFLOW_OLDEST_PROCESSING_AGE, entity.label)
        for aggregate in self.aggregates:
            drop(catalogue.WORKFLOW_AGGREGATE, aggregate.name)
        for name in self.names:
            drop(catalogue.WORKFLOW_SAMPLE_AGE, name)


def instrument_workflow(
    engine: sa.Engine | AsyncEngine | str,
    entities: Sequence[Entity] = (),
    aggregates: Sequence[Aggregate] = (),
    interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    background: bool = True,
    connections: int = DEFAULT_CONNECTIONS,
) -> WorkflowSampler:
    """Sample workflow gauges from the database every `interval_seconds`, off the request path.

    `engine` (an Engine, an AsyncEngine or a URL) only says which database: the sampler
    builds its own engine from its URL, with `connections` connections (one on SQLite),
    so it never competes with requests for the application's pool (`connect_args` are
    not copied; put driver options in the URL). Each query stops after `timeout_seconds`. With
    `background=False` no thread starts and the caller runs `sample_once()` itself (a
    cron job, a worker's beat). Call `stop()` on the result to end sampling.
    """
    if not entities and not aggregates:
        raise DeclarationError("instrument_workflow() needs at least one entity or aggregate")
    wrong: list[object] = [e for e in entities if not isinstance(e, Entity)]
    wrong += [a for a in aggregates if not isinstance(a, Aggregate)]
    if wrong:
        raise TypeError(f"{wrong[0]!r}: entities are workflow.Entity, aggregates workflow.Aggregate")
    if not interval_seconds >= 1.0:
        raise ValueError(f"interval_seconds={interval_seconds}: sample at most once a second")
    if not 0 < timeout_seconds <= interval_seconds:
        raise ValueError(f"timeout_seconds={timeout_seconds} must be positive and at most the interval")
    if not 1 <= connections <= MAX_CONNECTIONS:
        raise ValueError(f"connections={connections}: between 1 and {MAX_CONNECTIONS}")
    check_unique(entities, aggregates)
    with _active_lock:
        taken = {n for other in _active for n in other.names} & {
            *(e.label for e in entities),
            *(a.name for a in aggregates),
        }
        if taken:
            raise DeclarationError(f"{sorted(taken)} are sampled already; stop() that sampler first")
        own = _own_engine(engine, connections)
        if own.dialect.name == "sqlite":
            connections = 1  # one file: a second reader only adds contention
        sampler = WorkflowSampler(
            own, own is not engine, entities, aggregates, interval_seconds, timeout_seconds, connections
        )
        _active.append(sampler)
    metrics.before_collect(_refresh_all_ages)
    sampler.refresh_ages()
    if background:
        sampler.start()
    return sampler


def _refresh_all_ages() -> None:
    with _active_lock:
        samplers = list(_active)
    for sampler in samplers:
        sampler.refresh_ages()


def _own_engine(engine: sa.Engine | AsyncEngine | str, connections: int) -> sa.Engine:
    given = getattr(engine, "sync_engine", engine)  # an AsyncEngine's url is its sync engine's
    if isinstance(given, str):
        url = sa.make_url(given)
    elif isinstance(given, sa.Engine):
        url = given.url
    else:
        raise TypeError(f"instrument_workflow() takes an Engine, an AsyncEngine or a URL, not {engine!r}")
    driver = _SYNC_DRIVERS.get(url.get_driver_name())
    if driver is not None:
        url = url.set(drivername=f"{url.get_backend_name()}+{driver}")
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        if isinstance(engine, sa.Engine):
            return engine  # a private in-memory database exists only behind the caller's engine
        raise ValueError("an in-memory SQLite database is only reachable through its Engine; pass that")
    if url.get_backend_name() == "sqlite":
        return sa.create_engine(url, poolclass=sa.pool.NullPool)
    return sa.create_engine(url, pool_size=connections, max_overflow=0, pool_pre_ping=True, pool_recycle=1800)
