"""Process start-up steps: spec probes synced, admin token made once, "no data" marks."""

from __future__ import annotations

from pydantic import SecretStr, TypeAdapter
from sqlalchemy import Engine, select

from lightkeeper.server.config import ServerConfig
from lightkeeper.server.http import auth, reads, writes
from lightkeeper.server.main import mark_no_data, prepare
from lightkeeper.server.store import tables as t
from lightkeeper.spec.models import Spec
from lightkeeper.spec.probes import Probe
from tests.server.http import seed
from tests.server.http.conftest import NOW

PROBE: TypeAdapter[Probe] = TypeAdapter(Probe)
SPEC = Spec.model_validate({"service": "shop", "environments": {"prod": {"targets": ["a:1"]}}})


def _config(*names: str, token: str | None = None) -> ServerConfig:
    probes = tuple(PROBE.validate_python({"name": n, "type": "tcp", "target": "127.0.0.1:1"}) for n in names)
    return ServerConfig(probes=probes, spec=SPEC, admin_token=SecretStr(token) if token else None)


def test_spec_probes_are_synced_and_removed_ones_retired(engine: Engine) -> None:
    prepare(_config("a", "b"), engine)
    api_probe = PROBE.validate_python({"name": "from-api", "type": "tcp", "target": "127.0.0.1:2"})
    writes.save_probe(engine, api_probe, "api", create=True)
    prepare(_config("b", "c"), engine)
    assert [v.name for v in reads.probes(engine)] == ["b", "c", "from-api"]


def test_an_unchanged_probe_keeps_its_schedule_and_a_changed_one_is_replanned(engine: Engine) -> None:
    prepare(_config("a"), engine)
    seed.state(engine, "a", "up", at=NOW)
    with engine.begin() as conn:
        conn.execute(t.probe_state.update().values(next_run_at=NOW))
    prepare(_config("a"), engine)
    with engine.connect() as conn:
        assert conn.execute(select(t.probe_state.c.next_run_at)).scalar_one() == NOW
    changed = PROBE.validate_python({"name": "a", "type": "tcp", "target": "127.0.0.1:9"})
    prepare(ServerConfig(probes=(changed,), spec=SPEC), engine)
    with engine.connect() as conn:
        assert conn.execute(select(t.probe_state.c.next_run_at)).scalar_one() is None


def test_admin_token_is_generated_once_and_only_without_one(engine: Engine) -> None:
    # the fixture stored a configured token already: nothing to generate
    assert prepare(_config(), engine) is None


def test_generated_token_works_and_is_stored_hashed(blank_engine: Engine) -> None:
    fresh = blank_engine
    token = prepare(_config(), fresh)
    assert token is not None and len(token) >= 32
    assert prepare(_config(), fresh) is None
    assert auth.is_admin(fresh, None, token)
    assert not auth.is_admin(fresh, None, token + "x")
    with fresh.connect() as conn:
        assert token not in conn.execute(select(t.admin_tokens.c.sha256)).scalars().all()


def test_no_data_marks_are_written_once(engine: Engine) -> None:
    prepare(_config("a", "b"), engine)
    seed.change(engine, "a", NOW, "up")
    assert mark_no_data(engine) == 2
    assert mark_no_data(engine) == 0
    with engine.connect() as conn:
        states = conn.execute(select(t.state_changes.c.probe, t.state_changes.c.state)).all()
    assert sorted(states) == [("a", "no_data"), ("a", "up"), ("b", "no_data")]


def test_after_a_crash_the_downtime_counts_as_no_data_from_when_the_next_check_was_due(
    engine: Engine,
) -> None:
    """A kill -9 writes no "no data" mark; the next start backdates it to the first
    check that never happened, so the gap is never counted as the last state seen."""
    from datetime import timedelta

    from lightkeeper.server.store import queries

    prepare(_config("a"), engine)  # tcp probe, default 60 s interval
    up_since = NOW - timedelta(hours=2)
    seed.change(engine, "a", up_since, "up")
    seed.state(engine, "a", "up", at=NOW - timedelta(hours=1))  # last check an hour ago, then the crash
    assert mark_no_data(engine, NOW, after_crash=True) == 1
    with engine.connect() as conn:
        marks = (
            conn.execute(select(t.state_changes.c.at).where(t.state_changes.c.state == "no_data"))
            .scalars()
            .all()
        )
    assert marks == [NOW - timedelta(hours=1) + timedelta(seconds=60)]
    (row,) = queries.uptime(engine, "a", up_since, NOW, now=NOW)
    assert row.as_dict()["no_data_seconds"] == 3600 - 60
    assert row.as_dict()["downtime_seconds"] == 0
