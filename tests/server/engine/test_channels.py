"""Channels end to end: a real Alertmanager, a local SMTP server, PagerDuty and Slack bodies."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine

from lightkeeper.server.engine.notify.dispatcher import Dispatcher
from lightkeeper.server.engine.notify.email import EmailChannel
from lightkeeper.server.engine.notify.message import DeliveryError
from lightkeeper.server.engine.notify.pagerduty import PagerDutyChannel
from lightkeeper.server.engine.notify.routing import Router, build_router
from lightkeeper.server.engine.notify.slack import SlackChannel
from lightkeeper.server.engine.transitions import apply_result
from lightkeeper.spec.models import EmailReceiver, PagerDutyReceiver, SlackReceiver
from tests.server.engine.conftest import sqlite_store
from tests.server.engine.helpers import make_probe, result
from tests.server.engine.receiver import Receiver, free_port, serve

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as c:
        yield c


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Engine]:
    engine = sqlite_store(tmp_path)
    yield engine
    engine.dispose()


def _down_then_up(store: Engine, tags: list[str] | None = None) -> int:
    probe = make_probe("api", component="Public API", tags=tags or [])
    with store.begin() as conn:
        opened = apply_result(conn, probe, result("api", "down", 0)).opened_incident
    with store.begin() as conn:
        apply_result(conn, probe, result("api", "up", 2))
    assert opened is not None
    return opened


async def _drain(dispatcher: Dispatcher, store: Engine, passes: int = 4) -> None:
    from tests.server.engine.helpers import T0

    for step in range(passes):
        await dispatcher.run_once(T0 + timedelta(minutes=10, seconds=10 * step))


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[str, Receiver]]:
    if ALERTMANAGER is None:
        pytest.skip("the alertmanager binary is not installed")
    with serve() as hook:
        config = tmp_path / "alertmanager.yml"
        config.write_text(
            "route:\n  receiver: hook\n  group_by: [alertname, probe]\n  group_wait: 0s\n"
            "  group_interval: 1s\n  repeat_interval: 1h\n"
            f"receivers:\n  - name: hook\n    webhook_configs:\n      - url: {hook.url}/am\n"
            "        send_resolved: true\n"
        )
        port = free_port()
        process = subprocess.Popen(
            [
                ALERTMANAGER,
                f"--config.file={config}",
                f"--storage.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError("alertmanager did not become ready")
                time.sleep(0.1)
            yield url, hook
        finally:
            process.terminate()
            process.wait(timeout=10)


async def test_real_alertmanager_forwards_firing_and_resolved(
    alertmanager: tuple[str, Receiver], store: Engine, client: httpx.AsyncClient
) -> None:
    url, hook = alertmanager
    probe = make_probe("api", component="Public API", tags=["severity:high"])
    with store.begin() as conn:
        apply_result(conn, probe, result("api", "down", 0, "expected status 200, got 503"))
    dispatcher = Dispatcher(store, build_router(None, client, alertmanager_url=url))
    await _drain(dispatcher, store, passes=1)
    bodies = await asyncio.to_thread(hook.wait_for, lambda b: len(b) >= 1, "/am")
    alert = bodies[0]["alerts"][0]
    assert bodies[0]["status"] == "firing"
    assert alert["labels"] == {
        "alertname": "ProbeDown",
        "probe": "api",
        "severity": "high",
        "service": "lightkeeper",
        "component": "Public API",
    }
    assert "expected status 200, got 503" in alert["annotations"]["description"]
    with store.begin() as conn:
        apply_result(conn, probe, result("api", "up", 2))
    await _drain(dispatcher, store, passes=3)
    bodies = await asyncio.to_thread(
        hook.wait_for, lambda b: any(x["status"] == "resolved" for x in b), "/am"
    )
    resolved = next(b for b in bodies if b["status"] == "resolved")
    assert resolved["alerts"][0]["labels"]["probe"] == "api"


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


async def test_email_over_local_smtp(store: Engine) -> None:
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        receiver = EmailReceiver.model_validate(
            {
                "to": "oncall@example.com",
                "from": "lk@example.com",
                "smarthost": f"127.0.0.1:{port}",
                "require_tls": False,
            }
        )
        _down_then_up(store)
        dispatcher = Dispatcher(store, Router({"mail": EmailChannel("mail", receiver)}))
        await _drain(dispatcher, store)
    finally:
        controller.stop()
    subjects = [m["Subject"] for _, m in inbox.messages]
    assert subjects == [
        "[DOWN] Public API is down (probe api)",
        "[RESOLVED] Public API recovered (probe api)",
    ]
    assert inbox.messages[0][0] == ["oncall@example.com"]
    assert "expected status 200, got 503" in inbox.messages[0][1].get_content()


async def test_email_refused_when_tls_is_required_but_missing(store: Engine) -> None:
    controller = Controller(_Inbox(), hostname="127.0.0.1", port=(port := free_port()))
    controller.start()
    try:
        receiver = EmailReceiver.model_validate(
            {"to": "a@example.com", "from": "b@example.com", "smarthost": f"127.0.0.1:{port}"}
        )
        with pytest.raises(DeliveryError, match="email mail: SMTPNotSupportedError"):
            await EmailChannel("mail", receiver).send(_alert())
    finally:
        controller.stop()


def _alert() -> Any:
    from lightkeeper.server.engine.notify.message import Alert
    from tests.server.engine.helpers import T0

    return Alert("opened", 7, "api", "Public API", "shop", "critical", "timed out after 10.0 s", T0)


async def test_pagerduty_trigger_and_resolve_share_a_dedup_key(
    store: Engine, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PD_KEY", "routing-key-123")
    with serve(status=202) as pd:
        channel = PagerDutyChannel(
            "pd", PagerDutyReceiver(routing_key_env="PD_KEY"), client, pd.url + "/v2/enqueue"
        )
        _down_then_up(store, tags=["severity:medium"])
        await _drain(Dispatcher(store, Router({"pd": channel})), store)
        trigger, resolve = pd.received("/v2/enqueue")
    assert trigger["event_action"] == "trigger" and resolve["event_action"] == "resolve"
    assert trigger["dedup_key"] == resolve["dedup_key"]
    assert trigger["routing_key"] == "routing-key-123"
    assert trigger["payload"]["severity"] == "warning" and trigger["payload"]["source"] == "api"


async def test_slack_message_and_a_missing_secret(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve() as slack:
        monkeypatch.setenv("SLACK_URL", slack.url + "/services/T0/B0/xyz")
        await SlackChannel("chat", SlackReceiver(webhook_url_env="SLACK_URL", channel="#ops"), client).send(
            _alert()
        )
        [body] = slack.received()
    assert body["channel"] == "#ops" and "Public API is down" in body["text"]
    monkeypatch.delenv("SLACK_URL")
    with pytest.raises(DeliveryError, match=r"SLACK_URL .* is not set"):
        await SlackChannel("chat", SlackReceiver(webhook_url_env="SLACK_URL"), client).send(_alert())
