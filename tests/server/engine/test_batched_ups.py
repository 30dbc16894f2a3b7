"""`apply_results` writes plain "up" results in bulk; the rows must be exactly those that
`apply_result` writes one by one, whatever history the probes bring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from lightkeeper.server.engine.transitions import Applied, Outcome, apply_result, apply_results
from lightkeeper.server.store.tables import incidents, outbox, probe_state, results, state_changes
from tests.server.engine.conftest import sqlite_store
from tests.server.engine.helpers import make_probe, result

OWNER = "replica-a"
# per probe: results before the batch (applied one by one), then the one result in the batch
HISTORIES = {
    "fresh": ([], "up"),  # first result ever: "up" state change
    "steady": (["up", "up"], "up"),  # nothing but "last checked"
    "after-no-data": (["up", "no_data"], "up"),  # the server was offline: "up" again
    "recovers": (["up", "down"], "up"),  # open incident: full path resolves and notifies
    "stays-down": (["down"], "down"),
    "first-down": ([], "down"),
}


def _rows(engine: Engine) -> dict[str, list[Any]]:
    with engine.connect() as conn:
        return {
            "results": conn.execute(
                select(
                    results.c.probe, results.c.checked_at, results.c.status, results.c.latency_ms
                ).order_by(results.c.probe, results.c.checked_at)
            ).all(),
            "state_changes": conn.execute(
                select(state_changes.c.probe, state_changes.c.at, state_changes.c.state).order_by(
                    state_changes.c.probe, state_changes.c.at
                )
            ).all(),
            "probe_state": conn.execute(select(probe_state).order_by(probe_state.c.probe)).all(),
            "incidents": conn.execute(
                select(incidents.c.probe, incidents.c.started_at, incidents.c.resolved_at).order_by(
                    incidents.c.probe
                )
            ).all(),
            "outbox": conn.execute(
                select(outbox.c.kind, outbox.c.dedupe_key).order_by(outbox.c.dedupe_key)
            ).all(),
        }


def _prepare(engine: Engine) -> list[Applied]:
    batch = []
    for name, (before, now) in HISTORIES.items():
        probe = make_probe(name)
        with engine.begin() as conn:
            conn.execute(probe_state.insert().values(probe=name, lease_owner=OWNER))  # as the scheduler seeds
            for minute, status in enumerate(before):
                apply_result(conn, probe, result(name, status, minute))
            conn.execute(probe_state.update().values(lease_owner=OWNER))  # claimed for the batched run
        batch.append(Applied(probe, result(name, now, len(before)), False, OWNER))
    return batch


def test_bulk_ups_write_the_rows_one_by_one_writes(store: Engine, tmp_path: Path) -> None:
    (tmp_path / "reference").mkdir()
    reference = sqlite_store(tmp_path / "reference")
    try:
        one_by_one = _prepare(reference)
        for item in one_by_one:
            with reference.begin() as conn:
                apply_result(conn, item.probe, item.result, lease_owner=item.lease_owner)
        outcomes = apply_results(store, _prepare(store))
        assert _rows(store) == _rows(reference)
    finally:
        reference.dispose()
    by_name = dict(zip(HISTORIES, outcomes, strict=True))
    assert by_name["fresh"] == Outcome("up", "up")
    assert by_name["steady"] == Outcome("up", None)
    assert by_name["after-no-data"] == Outcome("up", "up")
    assert by_name["recovers"].resolved_incident is not None  # the full path ran
    with store.connect() as conn:
        leases = set(conn.execute(select(probe_state.c.lease_owner)).scalars())
    assert leases == {None}


def test_a_probe_twice_in_a_batch_and_other_owners_leases(store: Engine) -> None:
    probe = make_probe("twice")
    with store.begin() as conn:
        conn.execute(probe_state.insert().values(probe="twice", lease_owner="replica-b"))
    first, second = result("twice", "up", 0), result("twice", "up", 1)
    outcomes = apply_results(
        store, [Applied(probe, first, False, OWNER), Applied(probe, second, False, OWNER)]
    )
    assert outcomes == [Outcome("up", "up"), Outcome("up", None)]
    with store.connect() as conn:
        row = conn.execute(select(probe_state)).one()
        changes = conn.execute(select(state_changes.c.at)).scalars().all()
    assert row.lease_owner == "replica-b"  # another replica's lease is not ours to release
    assert row.last_checked_at == second.checked_at
    assert changes == [first.checked_at]


def test_maintenance_results_take_the_full_path(store: Engine) -> None:
    probe = make_probe("planned")
    with store.begin() as conn:
        conn.execute(probe_state.insert().values(probe="planned"))
    up = result("planned", "up", 0)
    [outcome] = apply_results(store, [Applied(probe, up, True, None)])
    assert outcome.state == "maintenance"
    with store.connect() as conn:
        assert conn.execute(select(probe_state.c.state)).scalar_one() == "maintenance"
        assert conn.execute(select(results.c.checked_at)).scalar_one() == up.checked_at
