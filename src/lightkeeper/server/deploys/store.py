"""Recording and reading deployments; one row per (env, component, version).

CI jobs retry: a repeated start or finish of the same deployment must not count twice,
so both writes are idempotent on that key and a second report changes nothing. Only a
finish that contradicts the recorded one (another status) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Engine, Row, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from lightkeeper.server.store import tables as t

Outcome = Literal["success", "failure", "rolled_back"]
OUTCOMES: tuple[Outcome, ...] = ("success", "failure", "rolled_back")
IN_PROGRESS = "in_progress"
_d = t.deployments.c


class Conflict(Exception):
    """The report contradicts what is recorded; the message says how."""


class Invalid(Exception):
    """The report's times are impossible (a finish before its start, a commit after it)."""


@dataclass(frozen=True)
class Deployment:
    env: str
    component: str
    version: str
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    commit_at: datetime | None

    @property
    def duration_seconds(self) -> float | None:
        """Start to finish; None while running or when only the finish was reported."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def lead_time_seconds(self) -> float | None:
        """Commit to a successful finish (DORA's lead time for changes); None otherwise."""
        if self.status != "success" or self.commit_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.commit_at).total_seconds()


def _of(row: Row[Any, Any, Any, Any, Any, Any, Any]) -> Deployment:
    return Deployment(**row._mapping)


_COLUMNS = (_d.env, _d.component, _d.version, _d.status, _d.started_at, _d.finished_at, _d.commit_at)


def get(engine: Engine, env: str, component: str, version: str) -> Deployment | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(*_COLUMNS).where(_d.env == env, _d.component == component, _d.version == version)
        ).first()
    return None if row is None else _of(row)


def _insert(engine: Engine, **values: object) -> bool:
    """Insert in its own transaction; False when a concurrent report inserted it first."""
    try:
        with engine.begin() as conn:
            conn.execute(insert(t.deployments).values(**values))
    except IntegrityError:
        return False
    return True


def start(
    engine: Engine, env: str, component: str, version: str, at: datetime, commit_at: datetime | None
) -> tuple[Deployment, bool]:
    """Record a start; returns the deployment and whether this call created it."""
    if commit_at is not None and commit_at > at:
        raise Invalid("the commit time is after the deployment started")
    created = get(engine, env, component, version) is None and _insert(
        engine,
        env=env,
        component=component,
        version=version,
        status=IN_PROGRESS,
        started_at=at,
        commit_at=commit_at,
    )
    return _must_get(engine, env, component, version), created


def finish(
    engine: Engine,
    env: str,
    component: str,
    version: str,
    status: Outcome,
    at: datetime,
    commit_at: datetime | None,
) -> tuple[Deployment, bool]:
    """Record a finish; returns the deployment and whether this call changed anything.

    A finish without a start is kept (some pipelines only report the end) but has no
    duration. A finish repeated with the same status is a retry and changes nothing.
    """
    if commit_at is not None and commit_at > at:
        raise Invalid("the commit time is after the deployment finished")
    key = (_d.env == env, _d.component == component, _d.version == version)
    current = get(engine, env, component, version)
    if current is None and _insert(
        engine,
        env=env,
        component=component,
        version=version,
        status=status,
        finished_at=at,
        commit_at=commit_at,
    ):
        return _must_get(engine, env, component, version), True
    current = _must_get(engine, env, component, version)
    if current.status == IN_PROGRESS:
        if current.started_at is not None and at < current.started_at:
            raise Invalid("the finish time is before the deployment started")
        values: dict[str, object] = {"status": status, "finished_at": at}
        if commit_at is not None and current.commit_at is None:
            values["commit_at"] = commit_at
        with engine.begin() as conn:
            # the status guard makes two racing finishes record exactly one
            changed = conn.execute(
                update(t.deployments).where(*key, _d.status == IN_PROGRESS).values(**values)
            )
        if changed.rowcount == 1:
            return _must_get(engine, env, component, version), True
        current = _must_get(engine, env, component, version)
    if current.status != status:
        raise Conflict(f"this deployment already finished with status {current.status!r}")
    return current, False


def _must_get(engine: Engine, env: str, component: str, version: str) -> Deployment:
    found = get(engine, env, component, version)
    assert found is not None  # rows are never deleted
    return found


def listing(
    engine: Engine,
    *,
    env: str | None = None,
    component: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> list[Deployment]:
    """Newest first; `since` keeps deployments started or finished at or after it."""
    query = select(*_COLUMNS).order_by(_d.id.desc())
    if env is not None:
        query = query.where(_d.env == env)
    if component is not None:
        query = query.where(_d.component == component)
    if since is not None:
        query = query.where(or_(_d.started_at >= since, _d.finished_at >= since))
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        return [_of(row) for row in conn.execute(query)]
