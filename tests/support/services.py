"""Where the real services live for tests, and small helpers to reach them.

The test command (`scripts/test`) starts PostgreSQL and Redis when they are not
running; tests never skip because a service is missing - they fail, loudly.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PG_ADMIN_URL = os.environ.get("LK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_HOST = os.environ.get("LK_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("LK_TEST_REDIS_PORT", "6379"))
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(
    port: int, host: str = "127.0.0.1", timeout: float = 60.0, process: subprocess.Popen[Any] | None = None
) -> None:
    """Until something listens on the port. Generous, because two xdist workers on a busy
    2-CPU machine can take tens of seconds to import an app; a `process` that exits ends
    the wait at once."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        if process is not None and process.poll() is not None:
            raise TimeoutError(f"the process serving {host}:{port} exited with {process.returncode}")
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


@contextlib.contextmanager
def temporary_database() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards; yields a SQLAlchemy-style URL (no driver)."""
    import psycopg

    name = f"lk_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a hung dependency)."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                held.append(conn)
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield int(srv.getsockname()[1])
    finally:
        stop.set()
        t.join(timeout=1)
        for c in held:
            c.close()
        srv.close()


def closed_port() -> int:
    """A port nothing listens on (connections are refused)."""
    return free_port()


@contextlib.contextmanager
def uvicorn_process(
    app_ref: str,
    *,
    env: dict[str, str] | None = None,
    extra: list[str] | None = None,
    cwd: Path | None = None,
    log_path: Path | None = None,
) -> Iterator[tuple[int, Path]]:
    """Serve `module:app` with a real uvicorn on 127.0.0.1; yields (port, stdout log path)."""
    import tempfile

    port = free_port()
    out = log_path or Path(tempfile.mkstemp(prefix="lk-uvicorn-", suffix=".log")[1])
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full_env.get("PYTHONPATH", "")]))
    with out.open("wb") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                app_ref,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                *(extra or []),
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=str(cwd or ROOT),
        )
        try:
            try:
                wait_for_port(port, process=proc)
            except TimeoutError:
                proc.kill()
                raise RuntimeError(f"uvicorn did not start:\n{out.read_text()[-4000:]}") from None
            yield port, out
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def celery_worker_command(queue: str) -> list[str]:
    """A real prefork worker for `tests.integration.celery_app`, alone on its queue.

    Gossip, mingle and heartbeat are off so start-up does not wait on other workers.
    """
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tests.integration.celery_app",
        "worker",
        "-Q",
        queue,
        "-n",
        f"{queue}@%h",
        "--pool",
        "prefork",
        "--concurrency",
        "2",
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


@contextlib.contextmanager
def prometheus_server(config: Path, storage: Path, log: Path) -> Iterator[str]:
    """The real `prometheus` binary on a free port; yields its base URL, stops it after."""
    port = free_port()
    cmd = [
        "prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={storage}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        try:
            wait_for_port(port, timeout=15)
        except TimeoutError:
            raise AssertionError(f"prometheus did not start:\n{log.read_text()[-3000:]}") from None
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
