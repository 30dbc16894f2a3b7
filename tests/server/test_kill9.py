"""`kill -9` of a running server, then a restart on the same store.

The crash is timed while the down probe's "opened" notification is still waiting in the
outbox (the receiver refuses it), which is the window where a careless design either
loses the notification or sends it twice. After the restart the receiver accepts: the
notification must arrive exactly once, the incident must not be opened a second time,
and every result the first process committed must still be there.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, select, text

from lightkeeper.server.store import tables as t
from tests.server.engine import receiver

pytestmark = pytest.mark.integration

_SCRIPT = Path(sys.executable).with_name("lightkeeper")
_FALLBACK = "import sys; from lightkeeper.cli import main; sys.argv[0] = 'lightkeeper'; main()"
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-c", _FALLBACK]
URL_LINE = re.compile(r"status page at (http://\S+/)")


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextlib.contextmanager
def server_process(spec: Path, db_url: str, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The real `lightkeeper server` on an ephemeral port; yields the process and its base URL."""
    env = {**os.environ, "LIGHTKEEPER_ADMIN_TOKEN": "kill9-test-token-0123456789abcdef"}
    command = [*COMMAND, "server", "--spec", str(spec), "--db", db_url, "--port", "0"]
    already = log.stat().st_size if log.exists() else 0  # the same log across restarts
    with log.open("ab") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:

        def announced() -> str | None:
            assert proc.poll() is None, f"server exited early:\n{log.read_text()}"
            found = URL_LINE.search(log.read_bytes()[already:].decode(errors="replace"))
            return found.group(1) if found else None

        yield proc, wait_until(announced, "the server to listen").rstrip("/")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def probe(name: str, base: str) -> dict[str, Any]:
    return {"name": name, "type": "http", "target": f"{base}/ok", "interval_seconds": 1, "timeout_seconds": 1}


def probes_by_name(base: str) -> dict[str, dict[str, Any]]:
    try:
        response = httpx.get(f"{base}/api/probes", timeout=2)
    except httpx.HTTPError:
        return {}
    return {p["name"]: p for p in response.json()} if response.status_code == 200 else {}


def opened(hook: receiver.Receiver, probe: str) -> list[Any]:
    return [b for b in hook.received("/hook") if b.get("probe") == probe and b.get("status") == "firing"]


def test_kill_9_loses_no_committed_result_and_duplicates_nothing(tmp_path: Path, db_url: str) -> None:
    with receiver.serve() as healthy, receiver.serve() as flaky, receiver.serve(status=503) as hook:
        spec = tmp_path / "lightkeeper.yaml"
        spec.write_text(
            yaml.safe_dump(
                {
                    "service": "crash-test",
                    "environments": {"prod": {"targets": ["127.0.0.1:1"]}},
                    "receivers": {"hook": {"webhook": {"url": f"{hook.url}/hook"}}},
                    "probes": [probe("steady", healthy.url), probe("falling", flaky.url)],
                }
            )
        )
        log = tmp_path / "server.log"
        store = create_engine(db_url)

        def result_rows() -> set[tuple[Any, ...]]:
            r = t.results.c
            with store.connect() as conn:
                return set(conn.execute(select(r.id, r.probe, r.checked_at, r.ok, r.status)).all())

        def incidents() -> list[Any]:
            with store.connect() as conn:
                return list(conn.execute(select(t.incidents).where(t.incidents.c.probe == "falling")).all())

        with server_process(spec, db_url, log) as (proc, base):
            wait_until(
                lambda: (
                    all(p.get("state") == "up" for p in probes_by_name(base).values())
                    and len(probes_by_name(base)) == 2
                ),
                "both probes up",
            )
            flaky.status = 500  # the target goes down mid-run
            wait_until(lambda: len(incidents()) == 1, "the incident to open")
            # the receiver refuses: the "opened" notification was tried and is still pending
            wait_until(lambda: hook.received("/hook"), "a first delivery attempt")
            assert opened(hook, "falling")  # it was attempted with the incident's content ...
            time.sleep(1.5)  # ... and the scheduler keeps committing results meanwhile
            before = result_rows()
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        assert {row[1] for row in before} == {"steady", "falling"}

        refused = len(hook.received("/hook"))
        hook.status = 200
        with server_process(spec, db_url, log) as (proc, base):
            wait_until(
                lambda: len(opened(hook, "falling")) > refused, "the pending notification delivered", 60
            )
            count_after_restart = len([r for r in result_rows() if r[1] == "falling"])
            wait_until(
                lambda: len([r for r in result_rows() if r[1] == "falling"]) >= count_after_restart + 3,
                "more results after the restart",
            )
            wait_until(
                lambda: probes_by_name(base).get("falling", {}).get("state") == "down", "the probe shown down"
            )
            time.sleep(2)  # room for a wrongly duplicated notification to show up
            after = result_rows()
            # a clean stop this time, so the outbox state below is final
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)

        assert before <= after, f"committed results lost: {sorted(before - after)[:5]}"
        open_incidents = [i for i in incidents() if i.resolved_at is None]
        assert len(incidents()) == 1 and len(open_incidents) == 1
        accepted = opened(hook, "falling")[refused:]
        assert len(accepted) == 1, accepted
        assert accepted[0]["incident_id"] == open_incidents[0].id
        assert "500" in accepted[0]["cause"]
        assert not opened(hook, "steady")
        with store.connect() as conn:
            pending = conn.execute(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")).scalar_one()
        assert pending == 0
        store.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store: a SQLite file, or a new database on the local PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'crash.db'}"
        return
    admin = create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
    )
    name = f"lk_kill9_{os.getpid()}_{int(time.time())}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # no local PostgreSQL: skip, do not fail
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable: {type(exc).__name__}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
