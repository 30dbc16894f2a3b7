"""`bind()` is task-local for log lines and request-wide for the access line."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import structlog
from fastapi import FastAPI

import lightkeeper
from lightkeeper.sdk import context
from lightkeeper.testing import capture_logs


def test_gather_children_each_log_only_their_own_binding() -> None:
    async def child(job: str, ready: asyncio.Barrier) -> dict[str, Any]:
        context.bind(job=job)
        await ready.wait()  # both children have bound before either logs
        structlog.get_logger().info("child_step")
        return dict(context.current())

    async def request() -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
        with context.scoped(request_id="req-gather"):
            ready = asyncio.Barrier(2)
            seen = await asyncio.gather(child("a", ready), child("b", ready))
            return seen, dict(context.current()), dict(context.request_bound())

    with capture_logs() as logs:
        (seen_a, seen_b), parent, bound = asyncio.run(request())
    assert seen_a == {"request_id": "req-gather", "job": "a"}
    assert seen_b == {"request_id": "req-gather", "job": "b"}
    assert sorted(line["job"] for line in logs if line["event"] == "child_step") == ["a", "b"]
    assert all(line["request_id"] == "req-gather" for line in logs)
    assert parent == {"request_id": "req-gather"}  # children never write into their parent
    assert bound["job"] in {"a", "b"}  # but the request as a whole saw a job bound


def test_a_binding_made_in_a_pool_thread_reaches_the_request_not_the_task() -> None:
    async def request() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        with context.scoped(request_id="req-thread"):
            in_thread = await asyncio.to_thread(
                lambda: (context.bind(user="u-1"), dict(context.current()))[1]
            )
            return in_thread, dict(context.current()), dict(context.request_bound())

    in_thread, caller, bound = asyncio.run(request())
    assert in_thread == {"request_id": "req-thread", "user": "u-1"}
    assert caller == {"request_id": "req-thread"}
    assert bound == {"user": "u-1"}


def test_binding_outside_a_request_does_nothing() -> None:
    context.bind(user="nobody")
    assert context.current() == {} and context.request_bound() == {} and context.current_request_id() is None


def test_later_bindings_override_earlier_ones_and_scopes_nest_cleanly() -> None:
    with context.scoped(request_id="outer") as outer:
        context.bind(step=1)
        context.bind(step=2, extra=True)
        assert context.current() == {"request_id": "outer", "step": 2, "extra": True}
        with context.scoped(request_id="inner"):
            assert context.request_bound() == {}  # a new unit of work starts clean
            context.bind(step=9)
        assert context.current()["step"] == 2 and context.request_bound() == {"step": 2, "extra": True}
        assert outer == {"request_id": "outer"}  # the dict handed out is never mutated
    assert context.current() == {}


def test_an_empty_scope_still_collects_what_its_tasks_bind() -> None:
    async def request() -> dict[str, Any]:
        with context.scoped():
            await asyncio.to_thread(context.bind, step="one")
            context.bind(step="two")  # a bind on a bound frame still reaches the same root
            await asyncio.to_thread(context.bind, other=1)
            return dict(context.request_bound())

    assert asyncio.run(request()) == {"step": "two", "other": 1}


def test_concurrent_pool_threads_binding_at_once_lose_nothing() -> None:
    async def request() -> dict[str, Any]:
        with context.scoped(request_id="req-many"):
            start = threading.Barrier(4, timeout=5)  # the default pool has >= 5 threads

            def work(n: int) -> None:
                start.wait()
                context.bind(**{f"k{n}": n})

            await asyncio.gather(*(asyncio.to_thread(work, n) for n in range(4)))
            return dict(context.request_bound())

    assert asyncio.run(request()) == {f"k{n}": n for n in range(4)}


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/async/{user}")
    async def async_endpoint(user: str) -> dict[str, str]:
        lightkeeper.bind(user=user)
        return {"user": user}

    @app.get("/sync/{user}")
    def sync_endpoint(user: str) -> dict[str, str]:
        assert threading.current_thread() is not threading.main_thread()
        lightkeeper.bind(user=user)
        return {"user": user}

    @app.get("/jobs")
    async def jobs() -> dict[str, str]:
        async def run(job: str, ready: asyncio.Barrier) -> None:
            lightkeeper.bind(job=job)
            await ready.wait()
            structlog.get_logger().info("job_ran")

        ready = asyncio.Barrier(2)
        await asyncio.gather(run("first", ready), run("second", ready))
        structlog.get_logger().info("jobs_done")
        return {}

    @app.get("/sync-fail")
    def sync_fail() -> None:
        lightkeeper.bind(tenant="t-9")
        raise RuntimeError("sync endpoint broke")

    @app.get("/plain")
    async def plain() -> dict[str, str]:
        return {}

    lightkeeper.instrument(app, service="ctx", environment="test", version="1")
    return app


async def fetch(app: Any, *paths: str) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return list(await asyncio.gather(*(client.get(p) for p in paths)))


def access_lines(logs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {line["path"]: line for line in logs if line["event"] == "http_request"}


def test_async_and_sync_endpoint_bindings_reach_their_own_access_lines() -> None:
    app = make_app()
    with capture_logs() as logs:
        responses = asyncio.run(fetch(app, "/async/ann", "/sync/bob", "/async/cy", "/sync/dee", "/plain"))
    assert [r.status_code for r in responses] == [200] * 5
    lines = access_lines(logs)
    for user in ("ann", "cy"):
        assert lines[f"/async/{user}"]["user"] == user
    for user in ("bob", "dee"):
        assert lines[f"/sync/{user}"]["user"] == user
    assert "user" not in lines["/plain"]  # concurrent requests never share bindings


def test_children_of_one_request_keep_their_bindings_apart() -> None:
    app = make_app()
    with capture_logs() as logs:
        asyncio.run(fetch(app, "/jobs"))
    jobs = [line for line in logs if line["event"] == "job_ran"]
    assert sorted(line["job"] for line in jobs) == ["first", "second"]
    assert len({line["request_id"] for line in jobs}) == 1
    (done,) = [line for line in logs if line["event"] == "jobs_done"]
    assert "job" not in done  # the endpoint's own task never saw its children's bindings
    assert access_lines(logs)["/jobs"]["job"] in {"first", "second"}


def test_a_sync_endpoints_bindings_reach_its_error_line() -> None:
    app = make_app()
    with capture_logs() as logs:
        (response,) = asyncio.run(fetch(app, "/sync-fail"))
    assert response.status_code == 500
    (error,) = [line for line in logs if line["event"] == "unhandled_exception"]
    assert error["tenant"] == "t-9" and "sync endpoint broke" in error["exception"]
    assert access_lines(logs)["/sync-fail"]["tenant"] == "t-9"
