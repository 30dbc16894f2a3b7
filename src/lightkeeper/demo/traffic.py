"""A traffic generator that behaves like the example app's users (and its scanners).

It sends an open-loop stream at a target rate: every 1/rps seconds one action
starts, whatever the previous ones are doing, so slow endpoints show up as latency
instead of silently lowering the load. Every response is counted under the route
template it hit, so the counts can be compared exactly with what the app reports
on /metrics.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from lightkeeper.catalogue import UNMATCHED_ROUTE
from lightkeeper.demo.summary import RequestKey

# The demo tenant seeded by examples/saas_app/db.py (a test keeps the two in step).
DEMO_PASSWORD = "demo-password"  # noqa: S105 - the documented demo account, not a secret
DEMO_EMAILS = ("alice@example.com", "bob@example.com", "carol@example.com")

# Concurrency ceiling: beyond it the generator waits instead of piling up sockets.
MAX_IN_FLIGHT = 64
REQUEST_TIMEOUT_SECONDS = 30.0


@dataclass
class TrafficLog:
    """What the generator sent and what came back."""

    requests: Counter[RequestKey] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    # Monotonic times: the open loop's start and end, and when the last response arrived.
    started: float | None = None
    stopped: float | None = None
    finished: float | None = None

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    @property
    def elapsed(self) -> float:
        """Seconds the open loop has been (or was) starting actions."""
        if self.started is None:
            return 0.0
        return (self.stopped or time.monotonic()) - self.started

    @property
    def action_rate(self) -> float:
        """Actions started per second: the arrival rate the target `rps` is about."""
        return sum(self.actions.values()) / self.elapsed if self.elapsed > 0 else 0.0


@dataclass
class _Item:
    author: str
    status: str


@dataclass
class _State:
    tokens: dict[str, str] = field(default_factory=dict)
    org_ids: list[int] = field(default_factory=list)
    workspace_ids: list[int] = field(default_factory=list)
    items: dict[int, _Item] = field(default_factory=dict)


class _Session:
    """One demo run: the HTTP client, what the run has learned, and the tally."""

    def __init__(self, client: httpx.AsyncClient, rng: random.Random, log: TrafficLog) -> None:
        self.client = client
        self.rng = rng
        self.log = log
        self.state = _State()

    async def call(
        self,
        method: str,
        route: str,
        *,
        user: str | None = None,
        json: Any = None,
        params: dict[str, str] | None = None,
        path: str | None = None,
        **path_params: int,
    ) -> httpx.Response | None:
        """Send one request to `route` (a template filled from `path_params`, or `path`)
        and count it under the template; None when no response came back."""
        headers: dict[str, str] = {}
        if user is not None and user in self.state.tokens:
            headers["Authorization"] = f"Bearer {self.state.tokens[user]}"
        url = path or route.format(**path_params)
        try:
            response = await self.client.request(method, url, headers=headers, json=json, params=params)
        except httpx.HTTPError as exc:
            self.log.transport_errors[type(exc).__name__] += 1
            return None
        self.log.requests[(method, route, str(response.status_code))] += 1
        return response

    def user(self) -> str:
        return self.rng.choice(list(self.state.tokens) or list(DEMO_EMAILS))

    def workspace(self) -> int:
        return self.rng.choice(self.state.workspace_ids or [1])

    def item(self, *statuses: str) -> int | None:
        ids = [i for i, item in self.state.items.items() if not statuses or item.status in statuses]
        return self.rng.choice(ids) if ids else None

    # --- actions ---------------------------------------------------------------------

    async def login(self, email: str | None = None) -> None:
        email = email or self.rng.choice(DEMO_EMAILS)
        response = await self.call(
            "POST", "/api/auth/login", json={"email": email, "password": DEMO_PASSWORD}
        )
        if response is not None and response.status_code == 200:
            self.state.tokens[email] = response.json()["access_token"]

    async def failed_login(self) -> None:
        body = {"email": self.rng.choice(DEMO_EMAILS), "password": "wrong-password"}
        await self.call("POST", "/api/auth/login", json=body)

    async def list_orgs(self) -> None:
        response = await self.call("GET", "/api/orgs", user=self.user())
        if response is not None and response.status_code == 200:
            self.state.org_ids = sorted({org["id"] for org in response.json()} | set(self.state.org_ids))

    async def create_org(self) -> None:
        user = self.user()
        body = {"name": f"Team {self.rng.randrange(1000)}"}
        response = await self.call("POST", "/api/orgs", user=user, json=body)
        if response is not None and response.status_code == 201:
            org_id = response.json()["id"]
            await self.call(
                "POST", "/api/orgs/{org_id}/workspaces", org_id=org_id, user=user, json={"name": "General"}
            )

    async def list_workspaces(self) -> None:
        org_id = self.state.org_ids[0] if self.state.org_ids else 1  # the seeded tenant everyone is in
        response = await self.call("GET", "/api/orgs/{org_id}/workspaces", org_id=org_id, user=self.user())
        if response is not None and response.status_code == 200:
            self.state.workspace_ids = [w["id"] for w in response.json()]

    async def get_workspace(self) -> None:
        await self.call(
            "GET", "/api/workspaces/{workspace_id}", workspace_id=self.workspace(), user=self.user()
        )

    async def list_items(self) -> None:
        params = {"status": self.rng.choice(["review", "draft"])} if self.rng.random() < 0.3 else None
        response = await self.call(
            "GET", "/api/workspaces/{workspace_id}/items", workspace_id=self.workspace(), user=self.user(),
            params=params,
        )  # fmt: skip
        if response is not None and response.status_code == 200:
            for row in response.json():
                self.state.items.setdefault(row["id"], _Item(author="", status=row["status"]))

    async def create_item(self) -> None:
        user = self.user()
        body = {
            "title": f"Post {self.rng.randrange(10_000)}",
            "body": "Lorem ipsum " * self.rng.randrange(200),
        }
        response = await self.call(
            "POST",
            "/api/workspaces/{workspace_id}/items",
            workspace_id=self.workspace(),
            user=user,
            json=body,
        )
        if response is not None and response.status_code == 201:
            self.state.items[response.json()["id"]] = _Item(author=user, status="draft")

    async def get_item(self) -> None:
        item_id = self.item()
        if item_id is None:
            return await self.list_items()
        await self.call("GET", "/api/items/{item_id}", item_id=item_id, user=self.user())
        return None

    async def advance_item(self) -> None:
        """Move an item one step along draft -> processing -> review (or failed -> draft)."""
        item_id = self.item("draft", "processing", "failed")
        if item_id is None:
            return await self.create_item()
        item = self.state.items[item_id]
        if item.status == "processing":
            target = "failed" if self.rng.random() < 0.1 else "review"
        else:
            target = {"draft": "processing", "failed": "draft"}[item.status]
        response = await self.call(
            "PATCH", "/api/items/{item_id}", item_id=item_id, user=item.author or self.user(),
            json={"status": target},
        )  # fmt: skip
        if response is not None and response.status_code == 200:
            item.status = target
        return None

    async def comment(self) -> None:
        item_id = self.item()
        if item_id is None:
            return await self.create_item()
        body = {"body": self.rng.choice(["Looks good", "Please fix the intro", "Ship it"])}
        await self.call("POST", "/api/items/{item_id}/comments", item_id=item_id, user=self.user(), json=body)
        return None

    async def approve(self) -> None:
        item_id = self.item("review")
        if item_id is None:
            return await self.advance_item()
        item = self.state.items[item_id]
        reviewer = self.rng.choice([u for u in self.state.tokens if u != item.author] or [self.user()])
        response = await self.call("POST", "/api/items/{item_id}/approve", item_id=item_id, user=reviewer)
        if response is not None and response.status_code == 200:
            item.status = "approved"
        return None

    async def publish(self) -> None:
        item_id = self.item("approved")
        if item_id is None:
            return await self.approve()
        response = await self.call("POST", "/api/items/{item_id}/publish", item_id=item_id, user=self.user())
        if response is not None and response.status_code == 202:
            self.state.items[item_id].status = "published"
        return None

    async def export(self) -> None:
        item_id = self.item() or 1
        await self.call("GET", "/api/items/{item_id}/export", item_id=item_id, user=self.user())

    async def summarise(self) -> None:
        """Ask the writing assistant (one LLM call, priced by the app) for an item's summary."""
        item_id = self.item() or 1
        await self.call("POST", "/api/items/{item_id}/summary", item_id=item_id, user=self.user())

    async def slow_report(self) -> None:
        await self.call("GET", "/api/reports/slow", user=self.user())

    async def flaky(self) -> None:
        await self.call("GET", "/api/flaky", user=self.user())

    async def missing_item(self) -> None:
        item_id = 10_000_000 + self.rng.randrange(1_000_000)
        await self.call("GET", "/api/items/{item_id}", item_id=item_id, user=self.user())

    async def no_token(self) -> None:
        await self.call("GET", "/api/orgs")

    async def scanner(self) -> None:
        """A bot probing for well-known files: every path is new, none may mint a series."""
        target = self.rng.choice(["/wp-login.php", "/.env", "/admin/config.php", "/phpmyadmin/index.php"])
        await self.call("GET", UNMATCHED_ROUTE, path=f"{target}?probe={self.rng.randrange(1_000_000)}")


Action = Callable[[_Session], Awaitable[None]]

# (action, relative weight): mostly reads, a steady trickle of writes, a few bad actors.
MIX: tuple[tuple[str, Action, int], ...] = (
    ("login", _Session.login, 5),
    ("failed_login", _Session.failed_login, 3),
    ("list_orgs", _Session.list_orgs, 4),
    ("create_org", _Session.create_org, 1),
    ("list_workspaces", _Session.list_workspaces, 4),
    ("get_workspace", _Session.get_workspace, 4),
    ("list_items", _Session.list_items, 14),
    ("get_item", _Session.get_item, 10),
    ("create_item", _Session.create_item, 7),
    ("advance_item", _Session.advance_item, 8),
    ("comment", _Session.comment, 7),
    ("approve", _Session.approve, 4),
    ("publish", _Session.publish, 2),
    ("export", _Session.export, 4),
    ("summarise", _Session.summarise, 3),
    ("slow_report", _Session.slow_report, 3),
    ("flaky", _Session.flaky, 6),
    ("missing_item", _Session.missing_item, 2),
    ("no_token", _Session.no_token, 2),
    ("scanner", _Session.scanner, 5),
)


async def run_traffic(
    base_url: str,
    *,
    duration: float,
    rps: float,
    seed: int = 0,
    on_progress: Callable[[TrafficLog], None] | None = None,
) -> TrafficLog:
    """Drive the example app for `duration` seconds at about `rps` actions per second.

    Returns once every request it started has finished, so the log is final.
    """
    log = TrafficLog()
    rng = random.Random(seed)
    names = [name for name, _, _ in MIX]
    actions = {name: action for name, action, _ in MIX}
    weights = [weight for _, _, weight in MIX]
    limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT)
    async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT_SECONDS, limits=limits) as client:
        session = _Session(client, rng, log)
        for email in DEMO_EMAILS:
            await session.login(email)
        await session.list_orgs()
        await session.list_workspaces()

        slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        tasks: set[asyncio.Task[None]] = set()

        async def run(name: str) -> None:
            try:
                await actions[name](session)
            finally:
                slots.release()

        start = log.started = time.monotonic()
        sent = 0
        next_report = start
        while (now := time.monotonic()) - start < duration:
            if on_progress is not None and now >= next_report:
                on_progress(log)
                next_report = now + 0.1
            due = start + sent / rps
            if due > now:
                await asyncio.sleep(min(due - now, 0.1))
                continue
            await slots.acquire()
            name = rng.choices(names, weights)[0]
            log.actions[name] += 1
            task = asyncio.create_task(run(name))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
        log.stopped = time.monotonic()
        if tasks:
            await asyncio.gather(*tasks)
    log.finished = time.monotonic()
    if on_progress is not None:
        on_progress(log)
    return log
