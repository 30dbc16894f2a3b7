"""Budget alerts as the receiving app sees them: straight from the outbox to a webhook (the
in-app quota recipe in the README) and through a real Alertmanager run from the config
`lightkeeper generate` writes for the same spec.

`test_budgets.py` stops at the outbox rows; the app only ever sees what the channels make of
them, so these tests read the HTTP bodies. `_app_reads` is what the README's FastAPI handler
does with a POST: if the payload changes shape, these tests fail before the recipe goes stale.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import shutil
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import Engine, func, select

from lightkeeper.server.cost import budgets
from lightkeeper.server.cost.ingest import store_events
from lightkeeper.server.cost.schema import CostEventIn
from lightkeeper.server.engine.notify.alertmanager import AlertmanagerChannel
from lightkeeper.server.engine.notify.dispatcher import Dispatcher
from lightkeeper.server.engine.notify.routing import build_router
from lightkeeper.server.store.db import make_engine, upgrade
from lightkeeper.server.store.tables import outbox
from lightkeeper.spec.models import Spec
from lightkeeper.stack import alertmanager as am_config
from tests.server.cost.conftest import event
from tests.server.engine.receiver import Receiver, serve
from tests.support.services import free_port

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
NOV = datetime(2026, 11, 20, 9, tzinfo=UTC)
HOOK = "/internal/lightkeeper/budget"
TOKEN = "quota-hook-token-1234"
WEBHOOK_FIELDS = {
    "kind",
    "status",
    "slo",
    "tier",
    "labels",
    "annotations",
    "started_at",
    "resolved_at",
    "ends_at",
    "summary",
    "description",
}
_event_ids = itertools.count(1)


def _spec(hook: dict[str, Any]) -> Spec:
    """acme pays for a $10 plan, every other workspace gets $20, and the whole service $40."""
    return Spec.model_validate(
        {
            "service": "saas",
            "environments": {"prod": {"targets": ["api:8000"]}},
            "notification": {"group_wait": "0s", "group_interval": "1s", "repeat_interval": "1h"},
            "routing": {"medium": ["app"], "high": ["app"]},
            "receivers": {"app": {"webhook": hook}},
            "budgets": {
                "llm_monthly_usd": 40,
                "llm_workspaces_usd": {"acme": 10},
                "llm_workspace_default_usd": 20,
            },
        }
    )


def _spend(engine: Engine, workspace: str, usd: float, day: str = "2026-11-05") -> None:
    """Through the real ingest path, so the check reads the same roll-up the server fills."""
    payload = event(next(_event_ids), cost_usd=usd, workspace_id=workspace, timestamp=f"{day}T10:00:00Z")
    store_events(engine, [CostEventIn.model_validate(payload)])


def _labels(workspace: str, period: str, threshold: int) -> dict[str, str]:
    """The whole label set of a workspace budget alert: its identity in Alertmanager."""
    return {
        "alertname": "LLMBudgetThreshold",
        "category": "cost",
        "service": "saas",
        "severity": "high" if threshold >= 100 else "medium",
        "scope": "workspace",
        "workspace": workspace,
        "period": period,
        "threshold": str(threshold),
    }


def _app_reads(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The README handler, line for line: (idempotency key, level, text) per in-app notification.

    One POST from the server's webhook is one alert (`kind` tells budgets from incidents and
    SLO alerts); one POST from Alertmanager is a group of alerts (`alertname` tells them apart).
    """
    if "alerts" in body:
        alerts = [a for a in body["alerts"] if a["labels"].get("alertname") == "LLMBudgetThreshold"]
    else:
        alerts = [body] if body.get("kind") == "budget" else []
    out = []
    for alert in alerts:
        labels, notes = alert["labels"], alert["annotations"]
        if alert["status"] != "firing" or labels["scope"] != "workspace":
            continue
        percent = int(labels["threshold"])
        out.append(
            (
                f"{labels['workspace']}:{labels['period']}:{labels['threshold']}",
                "error" if percent >= 100 else "warning",
                f"Your workspace used {percent}% of this month's AI quota "
                f"(${notes['spent_usd']} of ${notes['budget_usd']}).",
            )
        )
    return out


def _scope(labels: dict[str, str]) -> str:
    """`workspace:acme`, `operation:summarise` or `global`, rebuilt from the labels alone."""
    scope = labels["scope"]
    return f"{scope}:{labels[scope]}" if scope in labels else scope


async def _drain(dispatcher: Dispatcher, at: datetime, passes: int = 3) -> None:
    for step in range(passes):
        await dispatcher.run_once(at + timedelta(seconds=1 + 10 * step))


def _unsent(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(outbox.c.sent_at.is_(None))).scalar_one())


def _outbox_keys(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(outbox.c.dedupe_key).order_by(outbox.c.id)).scalars())


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as c:
        yield c


@pytest.fixture
def app() -> Iterator[Receiver]:
    """Stands in for the app's budget endpoint: records every JSON body it is sent."""
    with serve() as receiver:
        yield receiver


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'lightkeeper.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


# --- straight to the app's webhook: the in-app quota recipe ------------------------------------


async def test_app_webhook_gets_each_threshold_once_per_month_with_what_a_notification_needs(
    store: Engine, app: Receiver, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the recipe keeps the shared secret out of the spec: the URL comes from the environment
    monkeypatch.setenv("APP_BUDGET_HOOK_URL", f"{app.url}{HOOK}?token={TOKEN}")
    spec = _spec({"url_env": "APP_BUDGET_HOOK_URL"})
    dispatcher = Dispatcher(store, build_router(spec, client))
    path = f"{HOOK}?token={TOKEN}"

    _spend(store, "acme", 5.5)  # acme 55 %
    assert budgets.check(store, spec.budgets, NOV, service="saas") == ["budget:workspace:acme:2026-11:50"]
    await _drain(dispatcher, NOV)
    first = app.received(path)
    assert len(first) == 1
    body = first[0]
    assert set(body) == WEBHOOK_FIELDS
    # the whole payload, as the README shows it
    assert body == {
        "kind": "budget",
        "status": "firing",
        "slo": "budget:workspace:acme",
        "tier": "2026-11:50",
        "labels": _labels("acme", "2026-11", 50),
        "annotations": {
            "summary": "LLM spend 2026-11 reached 50% of the workspace:acme budget",
            "description": "LLM spend 2026-11 reached 50% of the workspace:acme budget: $5.50 of $10.00",
            "spent_usd": "5.50",
            "budget_usd": "10.00",
        },
        "started_at": "2026-11-20T09:00:00+00:00",
        "resolved_at": None,
        "ends_at": "2026-12-01T00:00:00+00:00",
        "summary": "LLM spend 2026-11 reached 50% of the workspace:acme budget",
        "description": "LLM spend 2026-11 reached 50% of the workspace:acme budget: $5.50 of $10.00",
    }
    assert _app_reads(body) == [
        ("acme:2026-11:50", "warning", "Your workspace used 50% of this month's AI quota ($5.50 of $10.00).")
    ]

    _spend(store, "acme", 2.5)  # acme 80 %
    second = NOV + timedelta(hours=1)
    assert budgets.check(store, spec.budgets, second, service="saas") == ["budget:workspace:acme:2026-11:75"]
    await _drain(dispatcher, second)
    assert len(app.received(path)) == 2

    _spend(store, "globex", 12.0)  # globex 60 % of the default quota
    _spend(store, "acme", 3.0)  # acme 110 %; the service 23 of 40 = 57.5 %
    third = NOV + timedelta(hours=2)
    assert budgets.check(store, spec.budgets, third, service="saas") == [
        "budget:global:2026-11:50",
        "budget:workspace:acme:2026-11:90",
        "budget:workspace:acme:2026-11:100",
        "budget:workspace:globex:2026-11:50",
    ]
    await _drain(dispatcher, third)

    # a check later in the month, a restart, a second replica: nothing new reaches the app
    later = NOV + timedelta(days=3)
    assert budgets.check(store, spec.budgets, later, service="saas") == []
    await _drain(dispatcher, later, passes=4)
    bodies = app.received(path)
    assert all(set(b) == WEBHOOK_FIELDS and b["kind"] == "budget" for b in bodies)
    assert all(b["status"] == "firing" and b["resolved_at"] is None for b in bodies)
    assert all(b["ends_at"] == "2026-12-01T00:00:00+00:00" for b in bodies)
    sent = Counter((_scope(b["labels"]), b["labels"]["period"], b["labels"]["threshold"]) for b in bodies)
    assert sent == Counter(
        {
            ("workspace:acme", "2026-11", "50"): 1,
            ("workspace:acme", "2026-11", "75"): 1,
            ("workspace:acme", "2026-11", "90"): 1,
            ("workspace:acme", "2026-11", "100"): 1,
            ("workspace:globex", "2026-11", "50"): 1,
            ("global", "2026-11", "50"): 1,
        }
    )
    by_key = {(_scope(b["labels"]), b["labels"]["threshold"]): b for b in bodies}
    for threshold, spent in [(50, "5.50"), (75, "8.00"), (90, "11.00"), (100, "11.00")]:
        acme = by_key["workspace:acme", str(threshold)]
        assert acme["labels"] == _labels("acme", "2026-11", threshold)
        assert (acme["annotations"]["spent_usd"], acme["annotations"]["budget_usd"]) == (spent, "10.00")
    globex = by_key["workspace:globex", "50"]
    assert globex["labels"] == _labels("globex", "2026-11", 50)  # the default quota, same labels
    assert (globex["annotations"]["spent_usd"], globex["annotations"]["budget_usd"]) == ("12.00", "20.00")
    service = by_key["global", "50"]
    assert service["labels"] == {
        "alertname": "LLMBudgetThreshold",
        "category": "cost",
        "service": "saas",
        "severity": "medium",
        "scope": "global",
        "period": "2026-11",
        "threshold": "50",
    }
    assert (service["annotations"]["spent_usd"], service["annotations"]["budget_usd"]) == ("23.00", "40.00")

    # what the README handler turns this into: workspace notifications only, each key once
    reads = [r for b in bodies for r in _app_reads(b)]
    assert sorted(reads) == [
        (
            "acme:2026-11:100",
            "error",
            "Your workspace used 100% of this month's AI quota ($11.00 of $10.00).",
        ),
        ("acme:2026-11:50", "warning", "Your workspace used 50% of this month's AI quota ($5.50 of $10.00)."),
        ("acme:2026-11:75", "warning", "Your workspace used 75% of this month's AI quota ($8.00 of $10.00)."),
        (
            "acme:2026-11:90",
            "warning",
            "Your workspace used 90% of this month's AI quota ($11.00 of $10.00).",
        ),
        (
            "globex:2026-11:50",
            "warning",
            "Your workspace used 50% of this month's AI quota ($12.00 of $20.00).",
        ),
    ]
    assert len(app.received()) == len(bodies)  # nothing went anywhere else on the app
    assert _unsent(store) == 0

    # a new month starts from zero: the first 50 % of December is sent again, ending with the year
    _spend(store, "acme", 6.0, day="2026-12-01")
    december = datetime(2026, 12, 1, 1, tzinfo=UTC)
    assert budgets.check(store, spec.budgets, december, service="saas") == [
        "budget:workspace:acme:2026-12:50"
    ]
    await _drain(dispatcher, december)
    new = app.received(path)[len(bodies) :]
    assert [b["labels"] for b in new] == [_labels("acme", "2026-12", 50)]
    assert new[0]["ends_at"] == "2027-01-01T00:00:00+00:00"
    assert _app_reads(new[0]) == [
        ("acme:2026-12:50", "warning", "Your workspace used 50% of this month's AI quota ($6.00 of $10.00).")
    ]


def test_the_readme_handler_ignores_what_is_not_a_workspace_budget() -> None:
    """The app's receiver also gets incidents, SLO alerts and resolves; none may notify a user."""
    notes = {"spent_usd": "5.50", "budget_usd": "10.00"}
    firing: dict[str, Any] = {
        "status": "firing",
        "labels": _labels("acme", "2026-11", 50),
        "annotations": notes,
    }
    assert len(_app_reads({"kind": "budget", **firing})) == 1
    assert _app_reads({"kind": "slo", **firing}) == []
    assert _app_reads({"kind": "incident", "status": "firing", "probe": "api"}) == []
    assert _app_reads({"kind": "budget", **firing, "status": "resolved"}) == []
    operation = {**firing, "labels": {**firing["labels"], "scope": "operation", "operation": "summarise"}}
    assert _app_reads({"kind": "budget", **operation}) == []
    burn = {**firing, "labels": {**firing["labels"], "alertname": "SLOBurnRate"}}
    assert _app_reads({"alerts": [burn, {**firing, "status": "resolved"}]}) == []
    assert len(_app_reads({"alerts": [burn, firing]})) == 1


async def test_app_refusing_the_webhook_gets_it_again_until_it_accepts(
    sqlite_store: Engine, client: httpx.AsyncClient
) -> None:
    """An app that is down or deploying must not lose the quota warning, and must expect the
    same alert more than once (what the README handler's idempotency key is for)."""
    with serve(status=503) as down:
        spec = _spec({"url": down.url + HOOK})
        dispatcher = Dispatcher(sqlite_store, build_router(spec, client))
        _spend(sqlite_store, "acme", 5.5)
        assert budgets.check(sqlite_store, spec.budgets, NOV) == ["budget:workspace:acme:2026-11:50"]
        await dispatcher.run_once(NOV + timedelta(seconds=1))
        assert len(down.received(HOOK)) == 1 and _unsent(sqlite_store) == 1
        down.status = 200
        for step in range(6):
            await dispatcher.run_once(NOV + timedelta(minutes=1 + step))
        bodies = down.received(HOOK)
    assert len(bodies) == 2 and bodies[0] == bodies[1]
    assert bodies[1]["kind"] == "budget" and bodies[1]["labels"]["threshold"] == "50"
    assert [r[0] for b in bodies for r in _app_reads(b)] == ["acme:2026-11:50", "acme:2026-11:50"]
    assert _unsent(sqlite_store) == 0


# --- through a real Alertmanager, configured as `lightkeeper generate` writes it -----------------


def _month_end(at: datetime) -> datetime:
    return (at.replace(day=28) + timedelta(days=4)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _this_month() -> datetime:
    """Now, to the second. A budget alert ends with its month, so one from an earlier month
    reaches Alertmanager already resolved: these tests run on the real clock, and wait out
    the last two minutes of a month rather than straddle its end."""
    now = datetime.now(UTC).replace(microsecond=0)
    left = (_month_end(now) - now).total_seconds()
    if left < 120:
        time.sleep(left + 1)
        now = datetime.now(UTC).replace(microsecond=0)
    return now


def _am_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@contextmanager
def _alertmanager(tmp_path: Path, spec: Spec, resolve_timeout: str | None = None) -> Iterator[str]:
    """The alertmanager binary on the generated config; `resolve_timeout` shortens the generated 5m."""
    assert ALERTMANAGER is not None, "install the prometheus-alertmanager package"
    for relative, text in am_config.render(spec).items():
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    config = tmp_path / am_config.CONFIG_PATH
    if resolve_timeout is not None:
        data = yaml.safe_load(config.read_text())
        data["global"]["resolve_timeout"] = resolve_timeout
        config.write_text(yaml.safe_dump(data))
    port = free_port()
    log = tmp_path / "alertmanager.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                ALERTMANAGER,
                f"--config.file={config}",
                f"--storage.path={tmp_path / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
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
                raise AssertionError(f"alertmanager did not become ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _alerts(bodies: list[Any]) -> list[dict[str, Any]]:
    return [alert for body in bodies for alert in body["alerts"]]


def _thresholds(bodies: list[Any], status: str = "firing") -> set[int]:
    return {int(a["labels"]["threshold"]) for a in _alerts(bodies) if a["status"] == status}


async def _wait(app: Receiver, predicate: Callable[[list[Any]], bool], timeout: float = 15) -> list[Any]:
    return await asyncio.to_thread(app.wait_for, predicate, HOOK, timeout)


async def test_alertmanager_notifies_the_app_of_every_threshold_and_nothing_on_a_second_check(
    tmp_path: Path, sqlite_store: Engine, app: Receiver, client: httpx.AsyncClient
) -> None:
    spec = _spec({"url": app.url + HOOK})
    at = _this_month()
    period, day = at.strftime("%Y-%m"), at.strftime("%Y-%m-%d")
    with _alertmanager(tmp_path, spec) as url:
        dispatcher = Dispatcher(sqlite_store, build_router(spec, client, alertmanager_url=url))
        # one threshold, then two in one check (one Alertmanager group), then the 100 % (another route)
        for usd, crossed in [(5.5, [50]), (4.0, [75, 90]), (1.5, [100])]:
            _spend(sqlite_store, "acme", usd, day=day)
            assert budgets.check(sqlite_store, spec.budgets, at, service="saas") == [
                f"budget:workspace:acme:{period}:{t}" for t in crossed
            ]
            await _drain(dispatcher, at, passes=1)

            def arrived(bodies: list[Any], crossed: list[int] = crossed) -> bool:
                return set(crossed) <= _thresholds(bodies)

            await _wait(app, arrived)

        bodies = app.received(HOOK)
        assert {b["receiver"] for b in bodies} == {"app"}
        alerts = _alerts(bodies)
        assert {a["status"] for a in alerts} == {"firing"}
        # each threshold its own alert: its own label set, so its own fingerprint
        prints: dict[int, set[str]] = defaultdict(set)
        for a in alerts:
            prints[int(a["labels"]["threshold"])].add(a["fingerprint"])
        assert sorted(prints) == [50, 75, 90, 100]
        assert all(len(p) == 1 for p in prints.values())
        assert len(set.union(*prints.values())) == 4
        spent = {50: "5.50", 75: "9.50", 90: "9.50", 100: "11.00"}
        for a in alerts:
            threshold = int(a["labels"]["threshold"])
            assert a["labels"] == _labels("acme", period, threshold)
            assert a["annotations"] == {
                "summary": f"LLM spend {period} reached {threshold}% of the workspace:acme budget",
                "description": f"LLM spend {period} reached {threshold}% of the workspace:acme budget: "
                f"${spent[threshold]} of $10.00",
                "spent_usd": spent[threshold],
                "budget_usd": "10.00",
            }
            assert _am_time(a["startsAt"]) == at
        # the README handler: four notifications, whatever Alertmanager grouped or repeated
        assert {r[0] for b in bodies for r in _app_reads(b)} == {f"acme:{period}:{t}" for t in spent}

        # Alertmanager holds all four until the end of the month (not `resolve_timeout` from now)
        held = httpx.get(f"{url}/api/v2/alerts", params={"receiver": "app"}).json()
        assert sorted(int(a["labels"]["threshold"]) for a in held) == [50, 75, 90, 100]
        assert {a["status"]["state"] for a in held} == {"active"}
        assert {_am_time(a["endsAt"]) for a in held} == {_month_end(at)}

        # the same month checked again, an hour on: nothing is queued, nothing re-posted
        # (an alert with its own end needs no keep-alive), and the app hears nothing new
        seen, keys = len(app.received(HOOK)), _outbox_keys(sqlite_store)
        assert budgets.check(sqlite_store, spec.budgets, at + timedelta(seconds=30), service="saas") == []
        await _drain(dispatcher, at + timedelta(hours=1), passes=2)
        assert _outbox_keys(sqlite_store) == keys
        await asyncio.sleep(3)  # three group_intervals of the generated route
        assert len(app.received(HOOK)) == seen
        assert _unsent(sqlite_store) == 0


async def test_alertmanager_keeps_a_budget_alert_firing_past_resolve_timeout(
    tmp_path: Path, sqlite_store: Engine, app: Receiver, client: httpx.AsyncClient
) -> None:
    """Nothing re-posts a budget alert; its `endsAt` (the month's end) keeps it firing. The
    control, the same kind of alert posted without an end, is resolved `resolve_timeout`
    (5m as generated, 2s here) after it: so the wait below was long enough to see a resolve."""
    spec = _spec({"url": app.url + HOOK})
    at = _this_month()
    with _alertmanager(tmp_path, spec, resolve_timeout="2s") as url:
        dispatcher = Dispatcher(sqlite_store, build_router(spec, client, alertmanager_url=url))
        _spend(sqlite_store, "acme", 5.5, day=at.strftime("%Y-%m-%d"))
        assert budgets.check(sqlite_store, spec.budgets, at, service="saas") == [
            f"budget:workspace:acme:{at:%Y-%m}:50"
        ]
        await _drain(dispatcher, at, passes=1)
        await _wait(app, lambda b: 50 in _thresholds(b))
        control = budgets.budget_alert(budgets.BudgetState("workspace:globex", 20, 12), 50, at, "saas")
        await AlertmanagerChannel(url, client).send(dataclasses.replace(control, ends_at=None))

        def control_resolved(bodies: list[Any]) -> bool:
            return any(
                a["labels"].get("workspace") == "globex" and a["status"] == "resolved"
                for a in _alerts(bodies)
            )

        await _wait(app, control_resolved)
        await asyncio.sleep(2)  # two more group_intervals for a resolve of acme to show up
        bodies = app.received(HOOK)
        held = httpx.get(f"{url}/api/v2/alerts").json()
    acme = [a for a in _alerts(bodies) if a["labels"].get("workspace") == "acme"]
    assert acme and {a["status"] for a in acme} == {"firing"}
    assert len({a["fingerprint"] for a in acme}) == 1
    assert [a["labels"]["workspace"] for a in held] == ["acme"]  # the control is gone, acme is not
    assert held[0]["status"]["state"] == "active"
    assert _am_time(held[0]["endsAt"]) == _month_end(at)
    # the resolve of the control is not an in-app notification either
    assert {r[0] for b in bodies for r in _app_reads(b)} == {f"acme:{at:%Y-%m}:50", f"globex:{at:%Y-%m}:50"}
    assert _unsent(sqlite_store) == 0  # the server itself never sent a resolve
