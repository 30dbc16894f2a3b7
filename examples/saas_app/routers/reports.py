"""Endpoints that misbehave on purpose, so the demo has latency and errors to show."""

from __future__ import annotations

import asyncio
import random

from fastapi import APIRouter, Request

import lightkeeper
from examples.saas_app.access import CurrentUser

router = APIRouter(prefix="/api", tags=["reports"])


class InventorySyncError(RuntimeError):
    """What a flaky upstream dependency looks like from inside the app."""


class FailureSchedule:
    """Fails exactly `rate` of the calls, spread evenly: 0.2 fails calls 5, 10, 15, ...

    Deterministic rather than random, so a test (or a demo run) knows how many
    failures to expect from how many calls it made.
    """

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.calls = 0

    def next_fails(self) -> bool:
        self.calls += 1
        return int(self.calls * self.rate) > int((self.calls - 1) * self.rate)


@router.get("/reports/slow")
async def slow_report(user: CurrentUser) -> dict[str, object]:
    seconds = random.uniform(0.2, 1.2)
    await asyncio.sleep(seconds)  # an expensive aggregation query
    return {"report": "content-throughput", "generated_in_seconds": round(seconds, 3)}


@router.get("/flaky")
async def flaky(request: Request, user: CurrentUser) -> dict[str, str]:
    with lightkeeper.track_dependency("inventory", "sync"):
        if request.app.state.failures.next_fails():
            raise InventorySyncError("inventory service returned an invalid response")
    return {"inventory": "in sync"}
