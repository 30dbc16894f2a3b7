"""The batch buffer behind request metrics and request lines: bounded delay, order,
bounded memory, and nothing lost at a fork, an exit or a failing sink."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from lightkeeper.sdk import middleware
from lightkeeper.sdk.write_behind import WriteBehind

ROOT = Path(__file__).resolve().parents[2]


class Sink:
    def __init__(self) -> None:
        self.batches: list[list[Any]] = []
        self.threads: set[str] = set()

    def __call__(self, batch: list[Any]) -> None:
        self.threads.add(threading.current_thread().name)
        self.batches.append(batch)

    @property
    def records(self) -> list[Any]:
        return [r for b in self.batches for r in b]


def wait_for(predicate: Any, timeout: float = 3.0) -> float:
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, "timed out"
        time.sleep(0.005)
    return time.monotonic() - start


def test_records_reach_the_sink_in_order_and_in_one_batch_soon_after() -> None:
    sink = Sink()
    buffer = WriteBehind(sink, 0.05, "test")
    for i in range(20):
        buffer.add(i)
    assert sink.records == []  # nothing written on the request path
    waited = wait_for(lambda: len(sink.records) == 20)
    assert sink.records == list(range(20))
    assert len(sink.batches) == 1
    assert waited < 0.5
    assert sink.threads == {"lightkeeper-flush-test"}
    buffer.close()


def test_the_cap_writes_in_the_caller_so_memory_stays_bounded() -> None:
    sink = Sink()
    buffer = WriteBehind(sink, 5.0, "test", max_records=10)
    for i in range(25):
        buffer.add(i)
    assert sink.records == list(range(20))  # two full batches, written by the adding thread
    assert sink.threads == {threading.current_thread().name}
    assert len(buffer.pending) == 5
    buffer.close()
    assert sink.records == list(range(25))


def test_a_failing_sink_is_reported_and_the_flusher_keeps_going(capfd: pytest.CaptureFixture[str]) -> None:
    sink = Sink()
    calls = {"n": 0}

    def flaky(batch: list[Any]) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise BrokenPipeError("stdout closed")
        sink(batch)

    buffer = WriteBehind(flaky, 0.02, "test")
    buffer.add("lost")
    wait_for(lambda: calls["n"] == 1)
    time.sleep(0.05)
    buffer.add("kept")
    wait_for(lambda: sink.records == ["kept"])
    assert "batched records could not be written: BrokenPipeError" in capfd.readouterr().err
    buffer.close()


def test_after_close_records_are_written_at_once() -> None:
    sink = Sink()
    buffer = WriteBehind(sink, 5.0, "test")
    buffer.add(1)
    buffer.close()
    assert sink.records == [1]
    buffer.add(2)
    assert sink.records == [1, 2]


def test_an_interval_of_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="interval"):
        WriteBehind(Sink(), 0, "test")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_fork_writes_the_parents_records_once_and_the_child_starts_empty() -> None:
    with tempfile.TemporaryFile() as out:

        def sink(batch: list[Any]) -> None:
            os.write(out.fileno(), "".join(f"{r}\n" for r in batch).encode())

        buffer = WriteBehind(sink, 5.0, "test")
        buffer.add(f"parent-{os.getpid()}")
        pid = os.fork()
        if pid == 0:  # child
            code = 0
            try:
                code = 3 if buffer.pending else 0
                buffer.add("child")
                buffer.flush()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the child inherited the parent's records"
        buffer.close()
        out.seek(0)
        assert out.read().decode().splitlines() == [f"parent-{os.getpid()}", "child"]


def test_lines_waiting_at_exit_are_written() -> None:
    script = textwrap.dedent(
        """
        import asyncio, httpx
        from fastapi import FastAPI
        import lightkeeper

        app = FastAPI()

        @app.get("/x")
        async def x():
            return {}

        lightkeeper.instrument(app, service="t", flush_interval_ms=5000)

        async def go():
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
                assert (await c.get("/x", headers={"X-Request-ID": "exit-1"})).status_code == 200

        asyncio.run(go())
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LIGHTKEEPER_", "SENTRY_"))}
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=str(ROOT), env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert '"request_id":"exit-1"' in out.stdout
    assert time.monotonic() - started < 30  # exit did not wait for the 5 s interval to pass


async def test_request_metrics_wait_in_the_buffer_and_every_read_sees_them() -> None:
    import lightkeeper

    app = FastAPI()

    @app.get("/wb/{n}")
    async def item(n: int) -> dict[str, int]:
        return {"n": n}

    lightkeeper.instrument(app, service="t", flush_interval_ms=5000)
    labels = {"method": "GET", "route": "/wb/{n}", "status_code": "200"}
    before = REGISTRY.get_sample_value("http_requests_total", labels) or 0.0
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        for n in range(3):
            assert (await client.get(f"/wb/{n}")).status_code == 200
        assert len(middleware._waiting.pending) >= 3  # recorded, not yet applied
        assert REGISTRY.get_sample_value("http_requests_total", labels) == before + 3
        assert not middleware._waiting.pending
        await client.get("/wb/9")
        text = (await client.get("/metrics")).text
    line = 'http_requests_total{method="GET",route="/wb/{n}",status_code="200"}'
    assert f"{line} {before + 4}" in text


async def test_with_no_interval_metrics_are_applied_as_each_request_ends() -> None:
    import lightkeeper

    app = FastAPI()

    @app.get("/nb")
    async def item() -> dict[str, int]:
        return {}

    lightkeeper.instrument(app, service="t", flush_interval_ms=0)
    middleware._waiting.flush()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/nb")).status_code == 200
    assert not middleware._waiting.pending


def test_with_several_workers_series_are_applied_as_each_request_ends(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Values in shared files outlive a killed worker and are read by other workers."""
    assert middleware._Series("GET", "/mp-a", 200).batchable
    monkeypatch.setattr(middleware.multiprocess, "active_directory", lambda: tmp_path)
    assert not middleware._Series("GET", "/mp-b", 200).batchable


def test_exit_and_fork_hooks_wait_until_a_record_waits() -> None:
    # The middleware module makes its buffer at import; importing must not touch the
    # process's exit and fork hooks (only instrument() or a first record does).
    script = textwrap.dedent(
        """
        import atexit
        from lightkeeper.sdk import middleware, write_behind
        assert not write_behind._hooks_installed, "hooks at import"
        before = atexit._ncallbacks()
        buffer = write_behind.WriteBehind(lambda batch: None, 5.0, "t")
        assert not write_behind._hooks_installed, "hooks for an idle buffer"
        buffer.add(1)
        assert write_behind._hooks_installed
        assert atexit._ncallbacks() == before + 1
        write_behind.install_process_hooks()
        assert atexit._ncallbacks() == before + 1, "installed twice"
        buffer.close()
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=str(ROOT), timeout=60
    )
    assert out.returncode == 0, out.stderr
