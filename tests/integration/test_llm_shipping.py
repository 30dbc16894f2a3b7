"""Cost events shipped to the REAL server app (uvicorn, SQLite store) by the SDK's shipper.

The server goes away and comes back, the buffer overflows, and a proxy forwards a batch
and then loses the answer, so the shipper retries a batch the server already stored.
Every count is read back from the server's own tables.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import uvicorn
from prometheus_client import REGISTRY
from pydantic import SecretStr
from sqlalchemy import Engine, func, select

import lightkeeper
from lightkeeper.sdk.llm import events, record
from lightkeeper.sdk.llm.openai import uninstrument_openai
from lightkeeper.sdk.llm.shipper import Shipper, install, installed
from lightkeeper.sdk.settings import load_settings
from lightkeeper.server.config import ServerConfig
from lightkeeper.server.http.app import create_app
from lightkeeper.server.store.db import make_engine, upgrade
from lightkeeper.server.store.tables import llm_daily, llm_events
from tests.support.llm_fake import LLMFake

pytestmark = pytest.mark.integration

TOKEN = "ingest-admin-token"
USER = "alice@example.com"
PROMPT: Any = [{"role": "user", "content": "hi"}]
DROPPED = "lightkeeper_llm_events_dropped_total"


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def dropped(reason: str) -> float:
    return REGISTRY.get_sample_value(DROPPED, {"reason": reason}) or 0.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def served(engine: Engine, port: int = 0) -> Iterator[str]:
    config = ServerConfig(admin_token=SecretStr(TOKEN))
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config, engine, instrument=False), host="127.0.0.1", port=port, log_config=None
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class Proxy:
    """Forwards ingest POSTs to the server, records them, and drops the first `lose` answers."""

    def __init__(self, target: str, lose: int = 0) -> None:
        self.bodies: list[bytes] = []
        self.answers: list[dict[str, Any]] = []
        self.lose = lose
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                proxy.bodies.append(body)
                answer = httpx.post(
                    target + self.path,
                    content=body,
                    headers={
                        "Authorization": self.headers["Authorization"],
                        "Content-Type": "application/json",
                    },
                )
                proxy.answers.append(answer.json())
                if proxy.lose > 0:
                    proxy.lose -= 1
                    self.close_connection = True  # the server stored it; the client never hears
                    return
                self.send_response(answer.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'lightkeeper.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def shippers() -> Iterator[Callable[..., Shipper]]:
    made: list[Shipper] = []

    def make(url: str, **options: Any) -> Shipper:
        options = {"flush_interval": 0.1, "backoff_base": 0.05, "backoff_max": 0.2} | options
        shipper = Shipper(url, options.pop("token", TOKEN), **options)
        shipper.start()
        made.append(shipper)
        return shipper

    yield make
    for shipper in made:
        shipper.close(timeout=2)


def stored(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(llm_events).order_by(llm_events.c.event_id)).all())


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(llm_events)).scalar_one())


def cost_event(n: int) -> events.CostEvent:
    return events.CostEvent(
        timestamp=datetime(2026, 11, 3, 10, tzinfo=UTC),
        provider="openai",
        model="gpt-4o",
        operation="summarise",
        status="ok",
        input_tokens=1000,
        output_tokens=100,
        cache_read_tokens=0,
        cache_write_tokens=0,
        reasoning_tokens=0,
        cost_usd=0.0035,
        price_source="test",
        latency_seconds=0.25,
        user_hash=events.user_hasher("salt")(f"user{n}@example.com"),
        event_id=f"evt{n:010d}",
    )


def test_calls_arrive_with_exact_costs_and_no_user_id_in_clear(store: Engine) -> None:
    from lightkeeper.sdk import settings as settings_module

    previous = settings_module._current
    seen: list[events.CostEvent] = []
    with served(store) as url, LLMFake() as fake:
        proxy = Proxy(url)
        shipper = install(load_settings(llm_events_url=proxy.url, llm_events_token=TOKEN))
        assert shipper is not None and installed() is shipper
        assert shipper in events._sinks
        events.add_sink(seen.append)
        client = openai.OpenAI(base_url=f"{fake.url}/v1", api_key="sk-test", max_retries=0)
        try:
            lightkeeper.instrument_openai(client)
            settings_module.remember(load_settings(llm_user_salt="pepper"))
            record.reset()
            with lightkeeper.llm_operation("summarise", user_id=USER, workspace_id="acme"):
                for _ in range(3):
                    client.chat.completions.create(model="gpt-4o", messages=PROMPT)
            record.flush()
            shipper.flush()
            wait_for(lambda: count(store) == 3)
        finally:
            events.remove_sink(seen.append)
            install(load_settings())  # no URL: the shipper is drained and removed
            uninstrument_openai(client)
            settings_module._current = previous
            record.reset()
            client.close()
            proxy.close()
    assert installed() is None and shipper not in events._sinks
    rows = stored(store)
    with store.connect() as conn:
        hashes = {r.prompt_hash for r in conn.execute(select(llm_events.c.prompt_hash)).all()}
    assert len(hashes) == 1 and None not in hashes  # three equal prompts: one hash
    by_id = {e.event_id: e for e in seen}
    assert sorted(by_id) == [r.event_id for r in rows]
    for row in rows:
        sent = by_id[row.event_id]
        assert sent.cost_usd is not None and sent.cost_usd > 0
        assert (row.cost_usd, row.input_tokens, row.output_tokens) == (
            sent.cost_usd,
            sent.input_tokens,
            sent.output_tokens,
        )
        assert row.user_hash == events.user_hasher("pepper")(USER)
        assert row.prompt_hash == sent.prompt_hash == events.prompt_hasher("pepper")({"messages": PROMPT})
        assert USER not in repr(tuple(row)) and "alice" not in repr(tuple(row))
    with store.connect() as conn:
        (day,) = conn.execute(select(llm_daily)).all()
    assert day.calls == 3 and day.cost_usd == pytest.approx(sum(e.cost_usd or 0 for e in seen))
    assert proxy.bodies and all(b"alice" not in body for body in proxy.bodies)
    assert all(b'"hi"' not in body for body in proxy.bodies)  # the prompt travels only hashed


def test_server_down_then_back_loses_nothing_within_the_buffer(
    store: Engine, shippers: Callable[..., Shipper]
) -> None:
    port = free_port()
    shipper = shippers(f"http://127.0.0.1:{port}", buffer_size=100, batch_size=10)
    before = dropped("buffer_full")
    for n in range(25):
        shipper(cost_event(n))
    wait_for(lambda: shipper._failures >= 1)  # a first flush attempt failed: nobody listens
    assert count(store) == 0 and shipper.pending() == 25
    with served(store, port):
        shipper(cost_event(25))
        wait_for(lambda: count(store) == 26)
        wait_for(lambda: shipper.pending() == 0)
    assert [r.event_id for r in stored(store)] == [f"evt{n:010d}" for n in range(26)]
    assert dropped("buffer_full") == before


def test_beyond_the_buffer_events_are_dropped_and_counted_without_blocking(
    shippers: Callable[..., Shipper],
) -> None:
    shipper = shippers(f"http://127.0.0.1:{free_port()}", buffer_size=5, batch_size=2)
    before = dropped("buffer_full")
    started = time.monotonic()
    for n in range(12):
        shipper(cost_event(n))  # never raises, although nothing listens
    assert time.monotonic() - started < 0.5
    assert dropped("buffer_full") - before == 7
    assert shipper.pending() == 5


def test_a_batch_retried_after_a_lost_answer_is_stored_once(
    store: Engine, shippers: Callable[..., Shipper]
) -> None:
    with served(store) as url:
        proxy = Proxy(url, lose=1)
        try:
            shipper = shippers(proxy.url, batch_size=10)
            for n in range(10):
                shipper(cost_event(n))
            shipper.flush()
            wait_for(lambda: len(proxy.answers) >= 2 and shipper.pending() == 0)
        finally:
            proxy.close()
    assert proxy.answers[0] == {"received": 10, "stored": 10, "duplicates": 0}
    assert proxy.answers[1] == {"received": 10, "stored": 0, "duplicates": 10}
    assert json.loads(proxy.bodies[0]) == json.loads(proxy.bodies[1])
    assert count(store) == 10
    with store.connect() as conn:
        (day,) = conn.execute(select(llm_daily)).all()
    assert day.calls == 10 and day.cost_usd == pytest.approx(0.035)


def test_a_refused_batch_is_dropped_and_counted_not_retried(
    store: Engine, shippers: Callable[..., Shipper]
) -> None:
    before = dropped("rejected")
    with served(store) as url:
        proxy = Proxy(url)
        try:
            shipper = shippers(proxy.url, token="wrong-token", batch_size=4)
            for n in range(4):
                shipper(cost_event(n))
            wait_for(lambda: dropped("rejected") - before == 4)
            time.sleep(0.3)  # several backoff periods: a retry would show as a second request
        finally:
            proxy.close()
    assert len(proxy.bodies) == 1 and shipper.pending() == 0
    assert count(store) == 0
    assert b"wrong-token" not in proxy.bodies[0]


def test_close_sends_what_waits_without_waiting_for_the_interval(store: Engine) -> None:
    with served(store) as url:
        shipper = Shipper(url, TOKEN, flush_interval=60.0)
        shipper.start()
        for n in range(3):
            shipper(cost_event(n))
        started = time.monotonic()
        shipper.close(timeout=5)
        assert time.monotonic() - started < 5
    assert count(store) == 3


def _child_sends_its_own(shipper: Shipper, parents_thread: Any) -> int:
    """Runs in the forked child: exit status 0 when it started clean and sent its event."""
    try:
        thread = shipper._thread
        if shipper.pending() != 0:
            return 2  # the parent's buffer leaked into the child
        if thread is None or thread is parents_thread or not thread.is_alive():
            return 3
        shipper(cost_event(100))
        shipper.close(timeout=5)
        return 0 if shipper.pending() == 0 else 4
    except BaseException:
        return 5


def test_a_forked_child_starts_empty_with_its_own_thread_and_nothing_is_sent_twice(
    store: Engine,
) -> None:
    with served(store) as url:
        proxy = Proxy(url)
        try:
            shipper = Shipper(proxy.url, TOKEN, flush_interval=60.0, batch_size=100)
            shipper.start()
            for n in range(3):
                shipper(cost_event(n))  # buffered: nothing is due for a minute
            parents_thread = shipper._thread
            pid = os.fork()
            if pid == 0:
                os._exit(_child_sends_its_own(shipper, parents_thread))
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
            assert shipper.pending() == 3 and shipper._thread is parents_thread
            shipper.close(timeout=5)
        finally:
            proxy.close()
    sent = [e["event_id"] for body in proxy.bodies for e in json.loads(body)["events"]]
    assert sorted(sent) == ["evt0000000000", "evt0000000001", "evt0000000002", "evt0000000100"]
    assert count(store) == 4
