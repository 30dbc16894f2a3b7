"""The scheduler against real local targets: intervals, lag, timeouts, leases across replicas."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select

from lightkeeper.server.engine.scheduler import Scheduler, SchedulerOptions
from lightkeeper.server.store.tables import (
    heartbeat_pings,
    incidents,
    maintenance,
    probe_state,
    probes,
    results,
)
from lightkeeper.spec.probes import Probe
from tests.server.engine.helpers import make_probe
from tests.server.engine.receiver import hanging_target, serve


def _add(store: Engine, *defs: Probe) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "name": p.name,
            "source": "spec",
            "config": p.model_dump(mode="json", exclude_unset=True),
            "created_at": now,
            "updated_at": now,
        }
        for p in defs
    ]
    with store.begin() as conn:
        conn.execute(probes.insert(), rows)


async def _run_for(scheduler: Scheduler, seconds: float) -> None:
    task = asyncio.create_task(scheduler.run())
    await asyncio.sleep(seconds)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _http(name: str, url: str, **kw: object) -> Probe:
    return make_probe(name, type="http", target=url, interval_seconds=1, **kw)


async def test_probes_stay_on_their_grid_and_a_hanging_target_delays_nobody(store: Engine) -> None:
    with serve() as target, hanging_target() as hang:
        _add(store, *[_http(f"ok{i}", f"{target.url}/ok{i}") for i in range(5)])
        _add(store, _http("stuck", f"http://{hang}/", timeout_seconds=0.8))
        scheduler = Scheduler(store, options=SchedulerOptions(concurrency=4, refresh_seconds=0.5))
        await _run_for(scheduler, 4.5)
    planned: dict[str, list[datetime]] = defaultdict(list)
    for name, at in scheduler.executed:
        planned[name].append(at)
    assert set(planned) == {"ok0", "ok1", "ok2", "ok3", "ok4", "stuck"}
    for name, times in planned.items():
        assert len(times) == len(set(times)), f"{name} ran twice for one planned time"
        gaps = {round((b - a).total_seconds(), 3) for a, b in itertools.pairwise(sorted(times))}
        assert gaps == {1.0}, f"{name}: next run = previous plan + interval, got gaps {gaps}"
        assert len(times) >= 3
    lag = scheduler.lag()
    # the hanging probe holds one of 4 slots for 0.8 s each run; the others must not queue behind it
    # (bounds leave room for a loaded 2-core machine: a run queued behind it would lag ~0.8 s)
    assert lag.samples >= 18 and lag.p50_seconds < 0.25 and lag.max_seconds < 1.0, lag
    hits = Counter(path for path, _ in target.hits)
    assert all(hits[f"/ok{i}"] >= 3 for i in range(5)), hits
    with store.connect() as conn:
        state = {r.probe: r for r in conn.execute(select(probe_state))}
        stored = conn.execute(select(results.c.probe)).scalars().all()
    assert state["stuck"].state == "down" and "timed out" in state["stuck"].last_error
    assert state["ok0"].state == "up" and state["ok0"].last_error is None
    assert all(r.lease_owner is None for r in state.values()), "a clean stop releases every lease"
    assert len(stored) == scheduler.completed >= len(scheduler.executed) - 6, "every finished run was written"


async def test_first_runs_are_spread_over_the_interval(store: Engine) -> None:
    _add(store, *[make_probe(f"p{i}", interval_seconds=60) for i in range(40)])
    scheduler = Scheduler(store)
    before = datetime.now(UTC)
    await scheduler.refresh()
    with store.connect() as conn:
        plans = sorted(conn.execute(select(probe_state.c.next_run_at)).scalars())
    offsets = [(p - before).total_seconds() for p in plans]
    assert all(-0.01 <= o <= 60.5 for o in offsets)
    assert offsets[-1] - offsets[0] > 20, "40 probes are not bunched into one moment"


async def test_two_replicas_share_probes_and_take_over_from_a_dead_one(pg_store: Engine) -> None:
    options = SchedulerOptions(concurrency=50, refresh_seconds=0.5, tick_seconds=0.05)
    with serve() as target:
        _add(pg_store, *[_http(f"p{i:02d}", f"{target.url}/p{i:02d}") for i in range(20)])
        a = Scheduler(pg_store, owner="replica-a", options=options)
        b = Scheduler(pg_store, owner="replica-b", options=options)
        task_a = asyncio.create_task(a.run())
        task_b = asyncio.create_task(b.run())
        await asyncio.sleep(4)
        # replica b dies: no clean-up, its leases stay until they expire
        b.release_leases_on_stop = False
        died = datetime.now(UTC)
        task_b.cancel()
        await asyncio.gather(task_b, return_exceptions=True)
        await asyncio.sleep(3.5)
        task_a.cancel()
        await asyncio.gather(task_a, return_exceptions=True)
    runs = list(a.executed) + list(b.executed)
    assert len(runs) == len(set(runs)), "a planned run was executed by both replicas"
    assert {name for name, _ in b.executed}, "replica b took part before it died"
    assert len({name for name, _ in a.executed} & {name for name, _ in b.executed}) > 5, "probes are shared"
    by_probe: dict[str, list[datetime]] = defaultdict(list)
    for name, at in runs:
        by_probe[name].append(at)
    for name, times in by_probe.items():
        ordered = sorted(times)
        gaps = [(y - x).total_seconds() for x, y in itertools.pairwise(ordered)]
        assert min(gaps) >= 0.999, f"{name} ran twice within one interval: {gaps}"
        after = [t for t in ordered if t > died]
        assert after and after[0] <= died + timedelta(seconds=2), f"{name} did not move within two intervals"
    # the target saw no execution that the plans do not account for
    hits = Counter(path for path, _ in target.hits)
    for name, times in by_probe.items():
        assert hits[f"/{name}"] <= len(times), f"{name}: {hits[f'/{name}']} hits for {len(times)} runs"


async def test_maintenance_window_and_heartbeat_pings_reach_the_stored_state(store: Engine) -> None:
    now = datetime.now(UTC)
    with serve(status=503) as target:
        _add(
            store,
            _http("web", f"{target.url}/web"),
            _http("admin", f"{target.url}/admin"),
            make_probe("nightly", type="heartbeat", interval_seconds=1, period_seconds=3600, grace_seconds=0),
        )
        with store.begin() as conn:
            conn.execute(
                maintenance.insert().values(
                    title="deploy",
                    probes=["web"],
                    starts_at=now - timedelta(minutes=1),
                    ends_at=now + timedelta(hours=1),
                    timezone="UTC",
                )
            )
            conn.execute(heartbeat_pings.insert().values(probe="nightly", at=now, kind="fail", exit_code=2))
        scheduler = Scheduler(store, options=SchedulerOptions(refresh_seconds=0.2))
        await _run_for(scheduler, 2.5)
    with store.connect() as conn:
        state = {r.probe: r for r in conn.execute(select(probe_state))}
        opened = set(conn.execute(select(incidents.c.probe)).scalars())
    assert state["web"].state == "maintenance" and state["admin"].state == "down"
    assert state["nightly"].state == "down", (state["nightly"], scheduler.executed)
    assert opened == {"admin", "nightly"}, "the window suppresses web's incident"
