"""Results → probe state, state changes, incidents and outbox rows, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from lightkeeper.server.engine.transitions import Applied, apply_result, apply_results, severity_of
from lightkeeper.server.store.tables import incidents, outbox, probe_state, results, state_changes
from tests.server.engine.helpers import T0, make_probe, result


def _apply(store: Engine, probe_fields: dict[str, object], statuses: list[str], **kw: bool) -> list[str]:
    probe = make_probe(**probe_fields)  # type: ignore[arg-type]
    shown: list[str] = []
    for minute, status in enumerate(statuses):
        with store.begin() as conn:
            shown.append(apply_result(conn, probe, result(probe.name, status, minute), **kw).state)  # type: ignore[arg-type]
    return shown


def _changes(store: Engine) -> list[str]:
    with store.connect() as conn:
        return list(conn.execute(select(state_changes.c.state).order_by(state_changes.c.id)).scalars())


def _outbox_keys(store: Engine) -> list[str]:
    with store.connect() as conn:
        return list(conn.execute(select(outbox.c.dedupe_key).order_by(outbox.c.id)).scalars())


def test_retries_then_incident_then_recovery(store: Engine) -> None:
    shown = _apply(store, {"retries": 2}, ["up", "down", "down", "down", "down", "up"])
    assert shown == ["up", "up", "up", "down", "down", "up"]
    assert _changes(store) == ["up", "down", "up"]
    with store.connect() as conn:
        rows = conn.execute(select(incidents)).all()
        assert len(rows) == 1
        assert rows[0].started_at == T0.replace(minute=3)
        assert rows[0].resolved_at == T0.replace(minute=5)
        assert rows[0].cause == "expected status 200, got 503"
        payloads = list(conn.execute(select(outbox.c.payload).order_by(outbox.c.id)).scalars())
        assert conn.execute(select(results.c.id)).all().__len__() == 6
    assert _outbox_keys(store) == [f"incident:{rows[0].id}:opened", f"incident:{rows[0].id}:resolved"]
    assert payloads[0]["event"] == "opened" and payloads[0]["severity"] == "critical"
    assert payloads[1]["resolved_at"] == T0.replace(minute=5).isoformat()


def test_flapping_below_retries_never_opens_an_incident(store: Engine) -> None:
    shown = _apply(store, {"retries": 1}, ["up", "down", "up", "down", "up", "down", "up"])
    assert set(shown) == {"up"}
    assert _changes(store) == ["up"]
    assert _outbox_keys(store) == []


def test_first_failure_is_down_with_zero_retries_from_unknown(store: Engine) -> None:
    assert _apply(store, {}, ["down"]) == ["down"]
    assert _changes(store) == ["down"]
    assert len(_outbox_keys(store)) == 1


def test_no_data_neither_counts_nor_resets_and_is_recorded(store: Engine) -> None:
    # down, no_data, down with retries=1: the two failures are consecutive across the gap
    shown = _apply(store, {"retries": 1}, ["up", "down", "no_data", "down", "no_data", "up"])
    assert shown == ["up", "up", "up", "down", "down", "up"]
    assert _changes(store) == ["up", "no_data", "down", "no_data", "up"]
    with store.connect() as conn:
        incident = conn.execute(select(incidents)).one()
        # offline time does not resolve the outage: one incident spans the gap
        assert incident.started_at == T0.replace(minute=3) and incident.resolved_at == T0.replace(minute=5)


def test_a_restart_never_duplicates_the_open_incident(store: Engine, tmp_path: object) -> None:
    _apply(store, {}, ["down"])
    store.dispose()  # a new process: nothing survives but the database
    _apply(store, {}, ["down", "down"])
    with store.connect() as conn:
        assert len(conn.execute(select(incidents)).all()) == 1
    assert len(_outbox_keys(store)) == 1
    with pytest.raises(IntegrityError), store.begin() as conn:
        conn.execute(incidents.insert().values(probe="api", started_at=T0, cause="second"))


def test_maintenance_suppresses_incidents_and_notifications(store: Engine) -> None:
    shown = _apply(store, {}, ["up", "down", "down", "up"], in_maintenance=True)
    assert shown == ["maintenance"] * 4
    assert _changes(store) == ["up", "down", "up"]  # the history stays true; uptime excludes the window
    assert _outbox_keys(store) == []
    # after the window, the retry count continues from the real state
    probe = make_probe()
    with store.begin() as conn:
        outcome = apply_result(conn, probe, result("api", "down", 10))
    assert outcome.state == "down" and outcome.opened_incident is not None
    assert _outbox_keys(store) == [f"incident:{outcome.opened_incident}:opened"]


def test_incident_open_before_maintenance_resolves_after_it(store: Engine) -> None:
    probe = make_probe()
    with store.begin() as conn:
        opened = apply_result(conn, probe, result("api", "down", 0)).opened_incident
    with store.begin() as conn:
        during = apply_result(conn, probe, result("api", "up", 1), in_maintenance=True)
    assert during.resolved_incident is None
    with store.begin() as conn:
        after = apply_result(conn, probe, result("api", "up", 2))
    assert after.resolved_incident == opened
    assert _outbox_keys(store) == [f"incident:{opened}:opened", f"incident:{opened}:resolved"]


def test_a_batch_is_one_transaction(store: Engine) -> None:
    probe = make_probe()
    good = result("api", "down", 0)
    naive = result("api", "up", 1)
    broken = type(naive)("api", True, "up", datetime(2026, 11, 3, 12, 1), 1.0, None)  # naive time: refused
    with pytest.raises(Exception, match="naive"):
        apply_results(store, [Applied(probe, good), Applied(probe, broken)])
    with store.connect() as conn:
        assert conn.execute(select(results)).all() == []
        assert conn.execute(select(incidents)).all() == []
    assert _outbox_keys(store) == []


def test_lease_is_released_only_for_its_owner(store: Engine) -> None:
    probe = make_probe()
    with store.begin() as conn:
        conn.execute(probe_state.insert().values(probe="api", lease_owner="a", lease_expires_at=T0))
    apply_results(store, [Applied(probe, result("api", "up", 0), lease_owner="b")])
    with store.connect() as conn:
        assert conn.execute(select(probe_state.c.lease_owner)).scalar_one() == "a"
    apply_results(store, [Applied(probe, result("api", "up", 1), lease_owner="a")])
    with store.connect() as conn:
        assert conn.execute(select(probe_state.c.lease_owner)).scalar_one() is None


def test_severity_comes_from_a_tag() -> None:
    assert severity_of(make_probe(tags=["severity:low"])) == "low"
    assert severity_of(make_probe(tags=["severity:bogus", "team:x"])) == "critical"


def test_insert_ignore_counts_only_the_rows_it_created(store: Engine) -> None:
    """Callers decide "I enqueued it" from the count, on both stores (psycopg's
    executemany reports -1, which once made every enqueue look like a duplicate)."""
    from lightkeeper.server.engine.sql import insert_ignore

    with store.begin() as conn:
        assert insert_ignore(conn, probe_state, [{"probe": "a"}], ["probe"]) == 1
        assert insert_ignore(conn, probe_state, [{"probe": "a"}], ["probe"]) == 0
        rows = [{"probe": f"p{i}"} for i in range(450)] + [{"probe": "a"}]
        assert insert_ignore(conn, probe_state, rows, ["probe"]) == 450
