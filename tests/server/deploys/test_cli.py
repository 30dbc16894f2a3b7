"""`lightkeeper deploy start|finish` as CI runs it: a real process against a real server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from pydantic import SecretStr
from sqlalchemy import Engine

from lightkeeper.server.config import ServerConfig
from lightkeeper.server.deploys import store
from lightkeeper.server.http.app import create_app
from lightkeeper.server.store.db import make_engine, upgrade
from lightkeeper.spec.server import ServerSection
from tests.server.deploys.conftest import TOKEN

LIGHTKEEPER = [sys.executable, "-c", "from lightkeeper.cli import main; main()"]


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    made = make_engine(f"sqlite:///{tmp_path / 'server.db'}")
    upgrade(made)
    yield made
    made.dispose()


@pytest.fixture
def served(sqlite_engine: Engine) -> Iterator[str]:
    config = ServerConfig(admin_token=SecretStr(TOKEN), server=ServerSection())
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config, sqlite_engine, instrument=False), host="127.0.0.1", port=0, log_config=None
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)


def _run(
    *args: str, token: str | None = TOKEN, token_var: str = "LIGHTKEEPER_ADMIN_TOKEN"
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTKEEPER_")}
    if token is not None:
        env[token_var] = token
    return subprocess.run(
        [*LIGHTKEEPER, "deploy", *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def _ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def _refused(result: subprocess.CompletedProcess[str], reason: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    assert reason in result.stderr


def test_start_and_finish_are_recorded_once(served: str, sqlite_engine: Engine) -> None:
    key = ["--env", "prod", "--component", "api", "--version", "1.4.2", "--server", served]
    _ok(_run("start", *key, "--commit-time", "2026-12-01T10:00:00+01:00"))
    _ok(_run("start", *key))  # a retried CI step
    found = store.get(sqlite_engine, "prod", "api", "1.4.2")
    assert found is not None and found.status == "in_progress"
    finished = _run("finish", *key, "--status", "rolled_back")
    _ok(finished)
    assert "prod/api/1.4.2 recorded" in finished.stdout
    again = _run("finish", *key, "--status", "rolled_back")
    _ok(again)
    assert "already recorded" in again.stdout
    assert [d.status for d in store.listing(sqlite_engine)] == ["rolled_back"]


def test_the_token_can_come_from_another_variable(served: str) -> None:
    key = ["--env", "prod", "--component", "api", "--version", "9", "--server", served]
    _ok(_run("start", *key, "--token-env", "CI_LIGHTKEEPER_TOKEN", token_var="CI_LIGHTKEEPER_TOKEN"))
    _refused(_run("start", *key, "--token-env", "CI_LIGHTKEEPER_TOKEN"), "CI_LIGHTKEEPER_TOKEN")


def test_bad_arguments_and_refusals_exit_2_with_a_reason(served: str, sqlite_engine: Engine) -> None:
    key = ["--env", "prod", "--component", "api", "--version", "2", "--server", served]
    _refused(_run("finish", *key, "--status", "cancelled"), "--status must be")
    _refused(_run("start", *key, "--commit-time", "yesterday"), "not an ISO-8601 time")
    _refused(_run("start", *key, "--commit-time", "2026-12-01T10:00:00"), "needs a UTC offset")
    _refused(_run("start", *key, token=None), "LIGHTKEEPER_ADMIN_TOKEN")
    _refused(_run("start", *key, token="wrong-token"), "(401)")
    _refused(
        _run("start", "--env", "Prod!", "--component", "api", "--version", "2", "--server", served), "(422)"
    )
    assert _run("start", "--env", "prod").returncode == 2  # a missing option is click's usage error
    assert store.listing(sqlite_engine) == []


def test_an_unreachable_server_exits_2_quickly() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    began = time.monotonic()
    result = _run(
        "start",
        "--env",
        "prod",
        "--component",
        "api",
        "--version",
        "1",
        "--server",
        f"http://127.0.0.1:{port}",
    )
    _refused(result, "cannot reach the lightkeeper server")
    assert time.monotonic() - began < 30
    _refused(
        _run("start", "--env", "p", "--component", "a", "--version", "1", "--server", "ftp://x"),
        "http(s) URL",
    )
