"""Idempotent starts and finishes, exact durations and lead times, on both stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, func, select

from lightkeeper.server.deploys import store
from lightkeeper.server.store import tables as t

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.deployments)).scalar_one())


def test_start_then_finish_gives_exact_duration_and_lead_time(engine: Engine) -> None:
    commit = T0 - timedelta(hours=2, seconds=5)
    started, created = store.start(engine, "prod", "api", "1.4.2", T0, commit)
    assert created and started.status == "in_progress" and started.duration_seconds is None
    done, changed = store.finish(engine, "prod", "api", "1.4.2", "success", T0 + timedelta(seconds=312), None)
    assert changed
    assert done.status == "success"
    assert done.duration_seconds == 312.0
    assert done.lead_time_seconds == 2 * 3600 + 5 + 312
    assert done.started_at == T0 and done.commit_at == commit


def test_retried_start_and_finish_are_one_deployment(engine: Engine) -> None:
    store.start(engine, "prod", "api", "1.4.2", T0, None)
    again, created = store.start(engine, "prod", "api", "1.4.2", T0 + timedelta(seconds=30), None)
    assert not created and again.started_at == T0  # the first start stands
    store.finish(engine, "prod", "api", "1.4.2", "failure", T0 + timedelta(minutes=2), None)
    retried, changed = store.finish(
        engine, "prod", "api", "1.4.2", "failure", T0 + timedelta(minutes=3), None
    )
    assert not changed and retried.finished_at == T0 + timedelta(minutes=2)
    assert _rows(engine) == 1


def test_a_finish_contradicting_the_recorded_one_is_refused(engine: Engine) -> None:
    store.finish(engine, "prod", "api", "2.0.0", "success", T0, None)
    with pytest.raises(store.Conflict, match="'success'"):
        store.finish(engine, "prod", "api", "2.0.0", "rolled_back", T0, None)


def test_a_finish_without_a_start_has_no_duration_but_a_lead_time(engine: Engine) -> None:
    done, changed = store.finish(engine, "prod", "web", "abc123", "success", T0, T0 - timedelta(minutes=30))
    assert changed and done.duration_seconds is None and done.lead_time_seconds == 1800.0


def test_failed_deployments_have_no_lead_time(engine: Engine) -> None:
    store.start(engine, "prod", "api", "3", T0, T0 - timedelta(hours=1))
    done, _ = store.finish(engine, "prod", "api", "3", "failure", T0 + timedelta(seconds=60), None)
    assert done.duration_seconds == 60.0 and done.lead_time_seconds is None


def test_impossible_times_are_refused(engine: Engine) -> None:
    with pytest.raises(store.Invalid, match="commit time"):
        store.start(engine, "prod", "api", "4", T0, T0 + timedelta(seconds=1))
    store.start(engine, "prod", "api", "5", T0, None)
    with pytest.raises(store.Invalid, match="before the deployment started"):
        store.finish(engine, "prod", "api", "5", "success", T0 - timedelta(seconds=1), None)
    assert store.get(engine, "prod", "api", "5") is not None
    assert store.get(engine, "prod", "api", "4") is None


def test_times_in_other_offsets_are_compared_as_instants(engine: Engine) -> None:
    paris = timezone(timedelta(hours=1))
    store.start(engine, "prod", "api", "6", T0, datetime(2026, 12, 1, 10, 30, tzinfo=paris))  # 09:30 UTC
    done, _ = store.finish(engine, "prod", "api", "6", "success", T0 + timedelta(seconds=90), None)
    assert done.lead_time_seconds == 1800 + 90


def test_listing_filters_and_orders_newest_first(engine: Engine) -> None:
    store.start(engine, "prod", "api", "1", T0, None)
    store.start(engine, "prod", "worker", "1", T0 + timedelta(hours=1), None)
    store.start(engine, "staging", "api", "1", T0 + timedelta(hours=2), None)
    assert [d.component for d in store.listing(engine, env="prod")] == ["worker", "api"]
    assert [d.env for d in store.listing(engine, component="api")] == ["staging", "prod"]
    assert [d.env for d in store.listing(engine, since=T0 + timedelta(minutes=90))] == ["staging"]
    assert len(store.listing(engine, limit=2)) == 2
