"""The outbox dispatcher against a real store and a local webhook receiver on an ephemeral port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import Engine, select

from lightkeeper.server.engine.notify.dispatcher import NEVER, Dispatcher, RetryPolicy
from lightkeeper.server.engine.notify.routing import Router, build_router
from lightkeeper.server.engine.notify.webhook import WebhookChannel
from lightkeeper.server.engine.transitions import apply_result
from lightkeeper.server.store.tables import outbox
from lightkeeper.spec.models import Spec, WebhookReceiver
from tests.server.engine.helpers import T0, make_probe, result
from tests.server.engine.receiver import free_port, serve

FAST = RetryPolicy(base_seconds=2, cap_seconds=30)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as c:
        yield c


def _outage(store: Engine, probe: str = "api", start: float = 0, recover: bool = True) -> int:
    definition = make_probe(probe)
    with store.begin() as conn:
        opened = apply_result(conn, definition, result(probe, "down", start)).opened_incident
    if recover:
        with store.begin() as conn:
            apply_result(conn, definition, result(probe, "up", start + 3))
    assert opened is not None
    return opened


def _router(client: httpx.AsyncClient, url: str, **kw: object) -> Router:
    hook = WebhookChannel("ops", WebhookReceiver(url=url + "/hook"), client)
    return Router({"ops": hook}, **kw)  # type: ignore[arg-type]


def _unsent(store: Engine) -> list[tuple[str, int, str | None]]:
    with store.connect() as conn:
        rows = conn.execute(
            select(outbox.c.dedupe_key, outbox.c.attempts, outbox.c.last_error).where(
                outbox.c.sent_at.is_(None)
            )
        )
        return [tuple(r) for r in rows]


async def test_delivery_retries_until_the_receiver_is_up_and_never_twice(
    store: Engine, client: httpx.AsyncClient
) -> None:
    incident = _outage(store)
    port = free_port()
    dispatcher = Dispatcher(store, _router(client, f"http://127.0.0.1:{port}"), retry=FAST)
    now = T0 + timedelta(minutes=5)
    assert await dispatcher.run_once(now) == 1  # "opened" fails: nobody listens
    pending = {k: (a, e) for k, a, e in _unsent(store)}
    assert pending[f"incident:{incident}:opened>ops"][0] == 1
    assert "ConnectError" in (pending[f"incident:{incident}:opened>ops"][1] or "")
    # the resolve waits for the open; nothing is due again before the backoff
    assert await dispatcher.run_once(now) == 0
    with serve(port) as receiver:
        later = now + timedelta(seconds=FAST.cap_seconds)
        for step in range(4):
            await dispatcher.run_once(later + timedelta(seconds=30 * step))
        events = [b["event"] for b in receiver.received("/hook")]
        assert events == ["opened", "resolved"]
        assert receiver.received()[0]["incident_id"] == incident
        assert _unsent(store) == []
        await dispatcher.run_once(later + timedelta(hours=1))
        assert len(receiver.received()) == 2


async def test_two_dispatchers_never_send_one_row_twice(pg_store: Engine, client: httpx.AsyncClient) -> None:
    for i in range(15):
        _outage(pg_store, f"p{i}", start=i)
    with serve() as receiver:
        first = Dispatcher(pg_store, _router(client, receiver.url), owner="a", batch=7)
        second = Dispatcher(pg_store, _router(client, receiver.url), owner="b", batch=7)
        now = T0 + timedelta(hours=1)
        for _ in range(8):
            await asyncio.gather(first.run_once(now), second.run_once(now))
            now += timedelta(seconds=10)
        keys = [(b["incident_id"], b["event"]) for b in receiver.received()]
    assert len(keys) == 30
    assert len(set(keys)) == 30
    assert _unsent(pg_store) == []


async def test_gives_up_after_max_attempts_without_leaking_the_url(
    store: Engine, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _outage(store, recover=False)
    secret_url = f"http://127.0.0.1:{free_port()}/hook?token=s3cr3t-value"
    monkeypatch.setenv("OPS_HOOK", secret_url)
    hook = WebhookChannel("ops", WebhookReceiver.model_validate({"url_env": "OPS_HOOK"}), client)
    dispatcher = Dispatcher(store, Router({"ops": hook}), retry=RetryPolicy(1, 1, max_attempts=2))
    now = T0 + timedelta(minutes=5)
    for step in range(4):
        await dispatcher.run_once(now + timedelta(seconds=10 * step))
    with store.connect() as conn:
        row = conn.execute(select(outbox).where(outbox.c.kind == "delivery")).one()
    assert row.attempts == 2
    assert row.next_attempt_at == NEVER
    assert row.last_error.startswith("gave up after 2 attempts: webhook ops:")
    assert "s3cr3t" not in row.last_error and "token" not in row.last_error


async def test_non_2xx_is_a_failure(store: Engine, client: httpx.AsyncClient) -> None:
    _outage(store, recover=False)
    with serve(status=500) as receiver:
        dispatcher = Dispatcher(store, _router(client, receiver.url), retry=FAST)
        await dispatcher.run_once(T0 + timedelta(minutes=5))
        assert len(receiver.received()) == 1
    [(key, attempts, error)] = _unsent(store)
    assert key.endswith(">ops") and attempts == 1 and error == "webhook ops: HTTP 500"


async def test_reminders_while_open_once_per_period(store: Engine, client: httpx.AsyncClient) -> None:
    incident = _outage(store, recover=False)
    with serve() as receiver:
        dispatcher = Dispatcher(store, _router(client, receiver.url, resend_seconds=60.0))
        start = T0
        await dispatcher.run_once(start + timedelta(seconds=30))
        await dispatcher.run_once(start + timedelta(seconds=130))
        await dispatcher.run_once(start + timedelta(seconds=131))
        await dispatcher.run_once(start + timedelta(seconds=135))
        events = [b["event"] for b in receiver.received()]
    assert events == ["opened", "reminder"]
    with store.connect() as conn:
        keys = set(conn.execute(select(outbox.c.dedupe_key)).scalars())
    assert f"incident:{incident}:reminder:2" in keys


async def test_routing_by_severity_from_the_spec(store: Engine, client: httpx.AsyncClient) -> None:
    with serve() as pager, serve() as chat:
        spec = Spec.model_validate(
            {
                "service": "shop",
                "environments": {"prod": {"targets": ["api:8000"]}},
                "receivers": {
                    "pager": {"webhook": {"url": pager.url + "/hook"}},
                    "chat": {"webhook": {"url": chat.url + "/hook", "send_resolved": False}},
                },
                "routing": {"critical": ["pager", "chat"], "low": ["chat"]},
            }
        )
        router = build_router(spec, client)
        _outage(store, "api")
        definition = make_probe("cache", tags=["severity:low"])
        with store.begin() as conn:
            apply_result(conn, definition, result("cache", "down", 10))
        dispatcher = Dispatcher(store, router)
        for step in range(3):
            await dispatcher.run_once(T0 + timedelta(minutes=20, seconds=10 * step))
        assert [(b["probe"], b["event"]) for b in pager.received()] == [
            ("api", "opened"),
            ("api", "resolved"),
        ]
        # chat does not want resolves; it gets both probes' openings
        assert sorted((b["probe"], b["event"]) for b in chat.received()) == [
            ("api", "opened"),
            ("cache", "opened"),
        ]
    assert _unsent(store) == []


async def test_alertmanager_url_takes_everything(client: httpx.AsyncClient) -> None:
    router = build_router(None, client, alertmanager_url="http://am:9093")
    assert list(router.channels) == ["alertmanager"]
    assert router.receivers_for("low") == ["alertmanager"]
    assert router.resend_seconds is not None and router.resend_seconds < 300


async def test_a_dead_dispatchers_claim_expires_and_is_sent_once(
    store: Engine, client: httpx.AsyncClient
) -> None:
    # the process crashed after the incident committed and after claiming its delivery
    incident = _outage(store, recover=False)
    with serve() as receiver:
        dead = Dispatcher(store, _router(client, receiver.url), owner="dead", lease_seconds=60)
        now = T0 + timedelta(minutes=1)
        await asyncio.to_thread(dead._fan_out, now)
        assert [c.dedupe_key for c in await asyncio.to_thread(dead._claim, now)] == [
            f"incident:{incident}:opened>ops"
        ]
        survivor = Dispatcher(store, _router(client, receiver.url), owner="alive")
        assert await survivor.run_once(now + timedelta(seconds=30)) == 0, "the lease still holds"
        assert await survivor.run_once(now + timedelta(seconds=61)) == 1
        await survivor.run_once(now + timedelta(seconds=200))
        assert [b["event"] for b in receiver.received()] == ["opened"]
    assert _unsent(store) == []
