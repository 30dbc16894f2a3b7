"""Several real worker processes behind one port: `/metrics` must count every request once.

gunicorn (uvicorn workers, with and without --preload, with and without the optional
child_exit hook) and `uvicorn --workers` serve tests/integration/multiworker_app.py with
no multi-process setup at all. Each scrape may be answered by any worker; every one must
report exactly the number of requests sent - also after a worker is SIGKILLed and
replaced, and after its files are compacted away.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lightkeeper import catalogue
from tests.support import services

pytestmark = [pytest.mark.integration, pytest.mark.slow]

APP = "tests.integration.multiworker_app:app"
WORKERS = 2
COMPACTION_WAIT_SECONDS = 20.0  # scrapes compact at most every 5 s


@dataclass
class Server:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    tmp: Path  # the server's TMPDIR: where lightkeeper puts its metrics directory
    # `Connection: close`: a new connection per request, which the kernel hands to any
    # worker, so requests and scrapes spread over all of them.
    client: httpx.Client

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _command(kind: str, port: int, tmp_path: Path) -> list[str]:
    if kind == "uvicorn":
        return [
            sys.executable,
            "-m",
            "uvicorn",
            APP,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(WORKERS),
            "--no-access-log",
        ]
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        APP,
        "-k",
        "uvicorn_worker.UvicornWorker",
        "-w",
        str(WORKERS),
        "-b",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "5",
    ]
    if kind == "gunicorn-preload":
        command.append("--preload")
    if kind == "gunicorn-hook":
        config = tmp_path / "gunicorn_conf.py"
        config.write_text("from lightkeeper.multiprocess import child_exit  # noqa: F401\n")
        command += ["-c", str(config)]
    return command


@contextlib.contextmanager
def _serve(kind: str, tmp_path: Path, tmp: Path | None = None) -> Iterator[Server]:
    port = services.free_port()
    tmp_path.mkdir(exist_ok=True)
    if tmp is None:
        tmp = tmp_path / "tmp"
        tmp.mkdir()
    log = tmp_path / "server.log"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PROMETHEUS_MULTIPROC_DIR", "LIGHTKEEPER_MULTIPROCESS_DIR"}
    }
    env["TMPDIR"] = str(tmp)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(services.ROOT), env.get("PYTHONPATH", "")]))
    env["LIGHTKEEPER_ACCESS_LOG"] = "false"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            _command(kind, port, tmp_path),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(services.ROOT),
            start_new_session=True,
        )
        server = Server(port, proc, log, tmp, httpx.Client(headers={"Connection": "close"}, timeout=10))
        try:
            try:
                services.wait_for_port(port, timeout=30)
                _wait_for_workers(server, WORKERS)
            except (TimeoutError, AssertionError) as exc:
                raise AssertionError(f"{kind} did not start ({exc}):\n{server.log_tail()}") from None
            yield server
        finally:
            server.client.close()
            proc.send_signal(signal.SIGINT)  # quick shutdown for gunicorn and uvicorn alike
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _worker_pids_answering(server: Server, attempts: int = 200) -> set[int]:
    return {
        int(server.client.get(f"{server.url}/health/live").headers["x-worker-pid"]) for _ in range(attempts)
    }


def _wait_for_workers(
    server: Server, count: int, exclude: frozenset[int] = frozenset(), timeout: float = 30.0
) -> set[int]:
    """Poll (with uncounted health probes) until `count` workers not in `exclude` answer."""
    deadline = time.monotonic() + timeout
    seen: set[int] = set()
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            seen = _worker_pids_answering(server, attempts=20) - exclude
            if len(seen) >= count:
                return seen
        time.sleep(0.2)
    raise AssertionError(
        f"only workers {sorted(seen)} answered; wanted {count} (excluding {sorted(exclude)})"
    )


def _send(server: Server, requests: int) -> Counter[int]:
    """`requests` counted requests from 8 threads; returns how many each worker pid served."""

    def one(i: int) -> int:
        if i % 5:
            response = server.client.get(f"{server.url}/items/{i}")
        else:
            response = server.client.post(f"{server.url}/items")
        assert response.status_code in (200, 201), response.text
        return int(response.headers["x-worker-pid"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        return Counter(pool.map(one, range(requests)))


def _scrape(server: Server) -> tuple[int, float]:
    """(worker that answered, http_requests_total summed over every series)."""
    response = server.client.get(f"{server.url}/metrics")
    assert response.status_code == 200, response.text
    total = sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == catalogue.HTTP_REQUESTS.name
    )
    return int(response.headers["x-worker-pid"]), total


def _assert_every_scrape_counts(
    server: Server, expected: int, workers: set[int], max_scrapes: int = 60
) -> None:
    """Scrape until each of `workers` has answered; every answer must equal `expected`."""
    answered: set[int] = set()
    for _ in range(max_scrapes):
        pid, total = _scrape(server)
        assert total == expected, f"worker {pid} reported {total} requests, {expected} were sent"
        answered.add(pid)
        if workers <= answered:
            return
    raise AssertionError(f"scrapes were answered only by {sorted(answered)}, not by all of {sorted(workers)}")


def _metrics_directory(server: Server) -> Path:
    found = sorted(server.tmp.glob("lightkeeper-metrics-*"))
    assert len(found) == 1, found
    return found[0]


def _files_of(directory: Path, pid: int) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.split(".")[0].endswith(f"_{pid}"))


def _kill_worker(server: Server, pid: int) -> set[int]:
    """SIGKILL one worker, wait for it to be reaped and replaced; returns the live workers."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)  # gone once the master has reaped it
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"worker {pid} was not reaped:\n{server.log_tail()}")
    return _wait_for_workers(server, WORKERS, exclude=frozenset({pid}))


@pytest.mark.parametrize("kind", ["gunicorn", "gunicorn-preload", "gunicorn-hook", "uvicorn"])
def test_metrics_count_every_request_once_across_workers(kind: str, tmp_path: Path) -> None:
    with _serve(kind, tmp_path) as server:
        first = _send(server, 200)
        assert len(first) == WORKERS, f"all requests went to one worker: {first}"
        workers = set(first)
        _assert_every_scrape_counts(server, 200, workers)
        directory = _metrics_directory(server)
        assert directory.name.startswith(f"lightkeeper-metrics-{server.proc.pid}-")
        assert directory.stat().st_mode & 0o777 == 0o700

        victim = max(workers, key=lambda pid: first[pid])
        assert _files_of(directory, victim), "the worker wrote no metric files"
        workers = _kill_worker(server, victim)
        if kind == "gunicorn-hook":  # child_exit compacted as soon as gunicorn reaped it
            assert _files_of(directory, victim) == []

        second = _send(server, 100)
        assert victim not in second
        _assert_every_scrape_counts(server, 300, workers)

        deadline = time.monotonic() + COMPACTION_WAIT_SECONDS
        while _files_of(directory, victim) and time.monotonic() < deadline:
            assert _scrape(server)[1] == 300  # scrapes during and after compaction
            time.sleep(0.5)
        assert _files_of(directory, victim) == [], f"dead worker files left: {sorted(os.listdir(directory))}"
        assert (directory / "counter_archive.db").exists()
        assert (directory / "histogram_archive.db").exists()
        _assert_every_scrape_counts(server, 300, workers)
        text = server.client.get(f"{server.url}/metrics").text
        assert 'http_requests_total{method="GET",route="/items/{item_id}",status_code="200"} 240.0' in text
        assert 'http_requests_total{method="POST",route="/items",status_code="201"} 60.0' in text
        assert 'http_request_duration_seconds_count{method="GET",route="/items/{item_id}"} 240.0' in text


def test_a_restarted_server_starts_from_zero_and_removes_the_old_directory(tmp_path: Path) -> None:
    """No wiping by hand: the next server gets a new directory and the stale one goes."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with _serve("gunicorn", tmp_path / "first", tmp) as server:
        _send(server, 30)
        _assert_every_scrape_counts(server, 30, set())
        old = _metrics_directory(server)
    assert old.exists()  # a stopped server leaves its files behind
    with _serve("gunicorn", tmp_path / "second", tmp) as server:
        new = _metrics_directory(server)
        assert new != old
        assert not old.exists()
        _send(server, 7)
        _assert_every_scrape_counts(server, 7, set())


def _in_progress(server: Server, route: str) -> float:
    response = server.client.get(f"{server.url}/metrics")
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == catalogue.HTTP_REQUESTS_IN_PROGRESS.name and sample.labels.get("route") == route
    )


def test_requests_in_progress_are_summed_over_workers(tmp_path: Path) -> None:
    with _serve("gunicorn", tmp_path) as server, ThreadPoolExecutor(max_workers=6) as pool:
        pending = [pool.submit(server.client.get, f"{server.url}/slow") for _ in range(6)]
        time.sleep(1.8)  # the requests are in their 3 s handler; samplers tick every second
        seen = {_in_progress(server, "/slow") for _ in range(6)}  # scrapes reach both workers
        assert seen == {6.0}, seen
        assert {f.result().status_code for f in pending} == {200}
        time.sleep(1.5)
        assert _in_progress(server, "/slow") == 0.0
