"""SLO burn-rate alerts leave the outbox once per state change: to a webhook, and to a real Alertmanager."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select

from lightkeeper.server.engine.notify.dispatcher import Dispatcher
from lightkeeper.server.engine.notify.routing import build_router
from lightkeeper.server.slo import alerting, samples
from lightkeeper.server.store.tables import outbox
from lightkeeper.spec.models import Spec
from lightkeeper.stack.rules import all_alerts
from tests.server.engine.receiver import Receiver, serve
from tests.server.engine.test_channels import alertmanager
from tests.server.slo.test_embedded import T0

__all__ = ["alertmanager"]  # the real-Alertmanager fixture, shared with the engine tests
SLO = "api-availability"


def _spec(hook: str | None = None) -> Spec:
    data: dict[str, Any] = {
        "service": "tiny",
        "environments": {"prod": {"targets": ["a:1"]}},
        "slos": [{"name": SLO, "objective": 99.5, "sli": {"kind": "availability"}}],
    }
    if hook is not None:
        data["receivers"] = {"hook": {"webhook": {"url": hook}}}
    return Spec.model_validate(data)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as c:
        yield c


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with serve() as receiver:
        yield receiver


def _burn_then_recover(engine: Engine, spec: Spec, minutes: int = 15) -> None:
    """3 minutes of only errors, then plenty of good traffic: page-fast fires, then resolves."""
    alerter = alerting.Alerter(engine, spec, "prod")
    good = total = 0.0
    for i in range(minutes * 4):
        if i < 13:
            total += 10
        else:
            good, total = good + 1000, total + 1000
        at = T0 + timedelta(seconds=15 * i)
        samples.append(engine, SLO, "a:1", samples.Sample(at, good, total))
        alerter.step(at)


async def _drain(dispatcher: Dispatcher, passes: int) -> None:
    for step in range(passes):
        await dispatcher.run_once(T0 + timedelta(minutes=20, seconds=10 * step))


def _changes(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.payload).where(outbox.c.kind == alerting.KIND).order_by(outbox.c.id)
        )
        return [dict(p) for (p,) in rows]


async def test_webhook_gets_each_state_change_once_in_order(
    engine: Engine, hook: Receiver, client: httpx.AsyncClient
) -> None:
    spec = _spec(hook.url + "/hook")
    _burn_then_recover(engine, spec)
    changes = _changes(engine)
    fast = [c["status"] for c in changes if c["tier"] == "page-fast"]
    assert fast == ["firing", "resolved"]
    # a restarted server re-evaluating the same moments writes no second row
    _burn_then_recover(engine, spec)
    assert len(_changes(engine)) == len(changes)

    dispatcher = Dispatcher(engine, build_router(spec, client))
    await _drain(dispatcher, passes=6)
    bodies = hook.received("/hook")
    assert Counter((b["tier"], b["status"]) for b in bodies) == Counter(
        (c["tier"], c["status"]) for c in changes
    )
    assert all(n == 1 for n in Counter((b["tier"], b["status"]) for b in bodies).values())
    sent = [b["status"] for b in bodies if b["tier"] == "page-fast"]
    assert sent == ["firing", "resolved"]
    assert all(b["kind"] == "slo" for b in bodies)
    assert dispatcher.depth() == 0
    await _drain(dispatcher, passes=3)
    assert len(hook.received("/hook")) == len(bodies)


async def test_failed_delivery_is_retried_and_resolve_waits_for_the_firing(
    engine: Engine, client: httpx.AsyncClient
) -> None:
    with serve(status=503) as down:
        spec = _spec(down.url + "/hook")
        _burn_then_recover(engine, spec)
        dispatcher = Dispatcher(engine, build_router(spec, client))
        await _drain(dispatcher, passes=2)
        # every firing was tried and refused; no resolve was sent ahead of its firing
        assert {b["status"] for b in down.received("/hook")} == {"firing"}
        down.status = 200
        for step in range(12):
            await dispatcher.run_once(T0 + timedelta(hours=1, minutes=15 * step))
        bodies = down.received("/hook")
    fast = [b["status"] for b in bodies if b["tier"] == "page-fast"]
    assert fast[-2:] == ["firing", "resolved"] and fast.count("resolved") == 1
    with engine.connect() as conn:
        unsent = conn.execute(select(func.count()).where(outbox.c.sent_at.is_(None))).scalar_one()
    assert unsent == 0


def test_labels_and_annotations_are_the_generated_rules(engine: Engine) -> None:
    spec = _spec()
    _burn_then_recover(engine, spec)
    fired = {c["labels"]["long_window"]: c for c in _changes(engine) if c["status"] == "firing"}
    assert "1h" in fired
    matched = 0
    for rule in all_alerts(spec):
        if rule.name != "ApiAvailabilityErrorBudgetBurn" or rule.long_window not in fired:
            continue
        got = fired[rule.long_window]
        assert got["labels"] == {"alertname": rule.name, "environment": "prod", **rule.rule_labels()}
        assert got["annotations"]["description"] == rule.description
        assert got["annotations"]["summary"] == rule.summary.replace("{{ $labels.service }}", "tiny").replace(
            "{{ $labels.environment }}", "prod"
        )
        assert got["annotations"]["runbook_url"].endswith("runbooks/ApiAvailabilityErrorBudgetBurn.md")
        matched += 1
    assert matched == len(fired)


async def test_real_alertmanager_gets_firing_then_resolved_with_ends_at(
    engine: Engine, alertmanager: tuple[str, Receiver], client: httpx.AsyncClient
) -> None:
    url, hook = alertmanager
    spec = _spec()
    _burn_then_recover(engine, spec)
    dispatcher = Dispatcher(engine, build_router(spec, client, alertmanager_url=url))
    await _drain(dispatcher, passes=6)
    bodies = await asyncio.to_thread(
        hook.wait_for, lambda b: any(x["status"] == "resolved" for x in b), "/am"
    )
    alerts = [a for b in bodies for a in b["alerts"] if a["labels"]["long_window"] == "1h"]
    assert alerts[0]["status"] == "firing"
    assert alerts[0]["labels"]["alertname"] == "ApiAvailabilityErrorBudgetBurn"
    assert alerts[0]["labels"]["slo"] == SLO and alerts[0]["labels"]["category"] == "slo"
    resolved = next(a for a in alerts if a["status"] == "resolved")
    assert resolved["endsAt"].startswith("2026-12-01T00:")
    assert resolved["startsAt"] == alerts[0]["startsAt"]
    assert dispatcher.depth() == 0
