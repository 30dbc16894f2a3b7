"""The CLI and the whole process: `lightkeeper server`, `probe run`, `report sla`.

`lightkeeper server` runs as a real subprocess on port 0 against a SQLite file; the test
reads the printed URL and token, exercises the API, then stops it with SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from lightkeeper.cli import app, main  # noqa: F401  (main registers the commands)
from lightkeeper.server.store import tables as t
from lightkeeper.server.store.db import make_engine, upgrade
from tests.server.http import seed

SPEC = """\
service: shop
environments:
  prod:
    targets: ["127.0.0.1:1"]
server:
  timezone: Europe/Berlin
  credits:
    - {{below_percent: 99.5, credit_percent: 10}}
probes:
  - name: listener
    type: tcp
    target: 127.0.0.1:{open_port}
    interval_seconds: 1
    component: Shop
  - name: closed
    type: tcp
    target: 127.0.0.1:{closed_port}
    interval_seconds: 1
"""


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP port that accepts (and closes) every connection, so its backlog never fills."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    sock.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def spec(tmp_path: Path, listener: int) -> Path:
    path = tmp_path / "lightkeeper.yaml"
    path.write_text(SPEC.format(open_port=listener, closed_port=_closed_port()))
    return path


def _runner() -> CliRunner:
    from lightkeeper.cli import _register

    if not any(c.name == "report" for c in app.registered_groups):
        _register()
    return CliRunner()


def test_probe_run_exit_codes(spec: Path, tmp_path: Path) -> None:
    runner = _runner()
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    ok = runner.invoke(app, ["probe", "run", "listener", "--spec", str(spec), "--db", db])
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("listener (tcp): up")
    failed = runner.invoke(app, ["probe", "run", "closed", "--spec", str(spec), "--db", db])
    assert failed.exit_code == 1
    assert "closed (tcp): down" in failed.output
    unknown = runner.invoke(app, ["probe", "run", "nope", "--spec", str(spec), "--db", db])
    assert unknown.exit_code == 2
    assert "no probe named 'nope'" in unknown.output


def test_a_broken_spec_is_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("service: shop\nenvironments: {}\nserver:\n  status_page_days: 3\n")
    result = _runner().invoke(app, ["probe", "run", "x", "--spec", str(bad)])
    assert result.exit_code == 2
    assert "status_page_days" in result.output


def test_report_sla_prints_and_writes_html(spec: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'report.db'}"
    engine = make_engine(db)
    upgrade(engine)
    seed.probe(engine, "listener", kind="tcp", target="127.0.0.1:9", component="Shop")
    seed.full_days(engine, "listener", datetime(2026, 10, 1, tzinfo=UTC), 31, down_per_day=864)  # 99 %
    engine.dispose()
    out = tmp_path / "report.html"
    runner = _runner()
    result = runner.invoke(
        app, ["report", "sla", "--month", "2026-10", "--html", str(out), "--db", db, "--spec", str(spec)]
    )
    assert result.exit_code == 0, result.output
    assert "Shop" in result.output and "10 %" in result.output
    html = out.read_text()
    assert '<th scope="row">Shop</th>' in html
    as_json = runner.invoke(
        app, ["report", "sla", "--month", "2026-10", "--json", "--db", db, "--spec", str(spec)]
    )
    document = json.loads(as_json.output)
    # Berlin's October: 31 days minus the UTC hours before 2026-09-30T22:00Z are not in it,
    # but every seeded day is at 99 %, so the month is too
    assert document["components"][0]["availability_percent"] == pytest.approx(99.0, abs=0.01)
    bad = runner.invoke(app, ["report", "sla", "--month", "October", "--db", db, "--spec", str(spec)])
    assert bad.exit_code == 2


def _read_until(process: subprocess.Popen[str], needle: str, deadline: float) -> list[str]:
    assert process.stdout is not None
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"{needle!r} not printed; got {lines!r}")


def test_server_process_end_to_end(spec: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'server.db'}"
    env = {k: v for k, v in os.environ.items() if k != "LIGHTKEEPER_ADMIN_TOKEN"}
    command = [
        sys.executable,
        "-c",
        "from lightkeeper.cli import main; main()",
        "server",
        "--spec",
        str(spec),
        "--db",
        db,
        "--port",
        "0",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        lines = _read_until(process, "status page at", time.monotonic() + 30)
        token_line = next(line for line in lines if line.startswith("Admin token"))
        token = token_line.rsplit(": ", 1)[1].strip()
        url = lines[-1].rsplit(" ", 1)[1].strip()
        with httpx.Client(base_url=url, timeout=5) as client:
            deadline = time.monotonic() + 20
            states: dict[str, str] = {}
            while time.monotonic() < deadline:
                states = {p["name"]: p["state"] for p in client.get("/api/probes").json()}
                if states == {"listener": "up", "closed": "down"}:
                    break
                time.sleep(0.2)
            assert states == {"listener": "up", "closed": "down"}
            assert client.get("/health/live").status_code == 200
            assert client.get("/health/ready").status_code == 200
            metrics = client.get("/metrics").text
            assert 'probe_success{probe="listener"} 1.0' in metrics
            assert "lightkeeper_incidents_open 1.0" in metrics
            assert "Some systems are down" in client.get("/").text
            created = client.post(
                "/api/probes",
                json={"name": "extra", "type": "tcp", "target": "127.0.0.1:1"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert created.status_code == 201
            assert client.post("/api/probes", json={}).status_code == 401
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    engine = make_engine(db)
    with engine.connect() as conn:
        last = {
            row.probe: row.state
            for row in conn.execute(
                select(t.state_changes).order_by(t.state_changes.c.at, t.state_changes.c.id)
            )
        }
        tokens = conn.execute(select(t.admin_tokens.c.sha256)).scalars().all()
    engine.dispose()
    # a clean stop closes every probe's history with "no data"; only the hash is stored
    assert last["listener"] == "no_data" and last["closed"] == "no_data"
    assert token not in tokens and len(tokens) == 1

    # a second start prints no new token
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        lines = _read_until(process, "status page at", time.monotonic() + 30)
        assert not any(line.startswith("Admin token") for line in lines)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_probe_run_judges_a_heartbeat_from_its_stored_pings(spec: Path, tmp_path: Path) -> None:
    from lightkeeper.server.http import writes

    db = f"sqlite:///{tmp_path / 'beat.db'}"
    engine = make_engine(db)
    upgrade(engine)
    seed.probe(engine, "beat", kind="heartbeat", period_seconds=3600)
    runner = _runner()
    args = ["probe", "run", "beat", "--spec", str(spec), "--db", db]
    waiting = runner.invoke(app, args)
    assert waiting.exit_code == 1  # no ping yet and not due: no data, which is not a pass
    assert "no_data" in waiting.output
    writes.record_ping(engine, "beat", "success", None)
    assert runner.invoke(app, args).exit_code == 0
    writes.record_ping(engine, "beat", "fail", 3)
    failed = runner.invoke(app, args)
    assert failed.exit_code == 1 and "down" in failed.output
    engine.dispose()
