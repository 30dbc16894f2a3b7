"""`lightkeeper server`: store, scheduler, outbox dispatcher, roll-ups and HTTP in one process.

Start order matters: migrations first (nothing reads an old schema), then the SQLite
single-replica guard, then the probes from the spec, and only then the loops. Every
probe gets a "no data" state change at start and at a clean stop, so the time the
server was not watching is never counted as up (a crash leaves the last state until
the next start, which is why the start writes one too).

Shutdown: uvicorn handles SIGINT/SIGTERM and returns; the other loops are then
cancelled, which makes the scheduler flush its pending results and release its leases.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import uvicorn
from sqlalchemy import Engine, insert, select

from lightkeeper.server import workflow
from lightkeeper.server.config import ServerConfig
from lightkeeper.server.cost import loop as cost_loop
from lightkeeper.server.engine.notify.dispatcher import Dispatcher
from lightkeeper.server.engine.notify.routing import build_router
from lightkeeper.server.engine.scheduler import Scheduler, SchedulerOptions
from lightkeeper.server.http import auth, writes
from lightkeeper.server.http.app import create_app
from lightkeeper.server.probes.connectivity import ConnectivityChecker
from lightkeeper.server.slo import loop as slo_loop
from lightkeeper.server.store import rollup
from lightkeeper.server.store import tables as t
from lightkeeper.server.store.db import make_engine, upgrade
from lightkeeper.server.store.single_replica import claim_single_replica

log = logging.getLogger(__name__)
ROLLUP_SECONDS = 30.0
RETENTION_SECONDS = 3600.0


def prepare(config: ServerConfig, engine: Engine) -> str | None:
    """Schema, admin token and spec probes; returns a newly generated admin token, if any."""
    upgrade(engine)
    configured = config.admin_token.get_secret_value() if config.admin_token else None
    generated = auth.ensure_admin_token(engine, configured)
    for probe in config.probes:
        writes.save_probe(engine, probe, "spec", create=True)
    if config.spec is not None:
        writes.retire_missing_spec_probes(engine, {p.name for p in config.probes})
    return generated


def mark_no_data(engine: Engine, at: datetime | None = None, *, after_crash: bool = False) -> int:
    """A "no data" state change for every live probe whose last change says otherwise.

    On a clean stop the moment is now. At start-up (`after_crash=True`) the previous
    process may have died without writing one, so the mark goes back to when the
    probe's next check was due after its last recorded one: the time the server was
    down counts as no data, never as the last state it saw.
    """
    now = at or datetime.now(UTC)
    s = t.state_changes.c
    ps = t.probe_state.c
    with engine.begin() as conn:
        live = conn.execute(
            select(t.probes.c.name, t.probes.c.config).where(t.probes.c.deleted_at.is_(None))
        ).all()
        rows = []
        for name, config in live:
            last = conn.execute(
                select(s.state, s.at).where(s.probe == name).order_by(s.at.desc(), s.id.desc()).limit(1)
            ).first()
            if last is not None and last.state == "no_data":
                continue
            moment = now
            if after_crash and last is not None:
                checked = conn.execute(
                    select(ps.last_checked_at).where(ps.probe == name)
                ).scalar_one_or_none()
                interval = int((config or {}).get("interval_seconds", 60)) if isinstance(config, dict) else 60
                if checked is not None:
                    due = checked + timedelta(seconds=interval)
                    moment = min(now, max(due, last.at))
            rows.append({"probe": name, "at": moment, "state": "no_data"})
        if rows:
            conn.execute(insert(t.state_changes), rows)
    return len(rows)


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT once it has stopped, which would kill the process
    before the scheduler flushes, releases its leases and writes "no data"; this one
    only asks uvicorn to stop and lets `serve` finish the shutdown and return."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


async def _every(seconds: float, step: Callable[[], object], what: str) -> None:
    while True:
        try:
            await asyncio.to_thread(step)
        except Exception:
            log.exception("%s failed; retrying in %.0f s", what, seconds)
        await asyncio.sleep(seconds)


async def serve(
    config: ServerConfig,
    *,
    announce: Callable[[str], None] = print,
    started: Callable[[str], Awaitable[None] | None] | None = None,
) -> None:
    """Run until SIGINT/SIGTERM. `announce` prints the one-time admin token and the URL."""
    engine = make_engine(config.db_url)
    with claim_single_replica(engine):
        generated = prepare(config, engine)
        if generated is not None:
            announce(
                "Admin token (shown once; only its hash is stored): "
                f"{generated}\n  use it as: Authorization: Bearer <token>"
            )
        mark_no_data(engine, after_crash=True)
        # The service's workflow, when the spec asks this server to sample it; a missing
        # database URL stops the start here, saying what to set.
        sampler = workflow.start(config)
        section = config.server
        async with httpx.AsyncClient(timeout=10) as client:
            connectivity = (
                ConnectivityChecker(config.connectivity_check) if config.connectivity_check else None
            )
            # No http_client: the scheduler's own client is sized to its concurrency
            # (see probes.http.shared_client); this one is for notifications.
            scheduler = Scheduler(
                engine,
                options=SchedulerOptions(service=config.service),
                connectivity=connectivity,
            )
            router = build_router(config.spec, client, alertmanager_url=section.alertmanager_url)
            dispatcher = Dispatcher(engine, router)
            app = create_app(config, engine, scheduler_lag=lambda: scheduler.lag().p99_seconds)
            server = _Server(
                uvicorn.Config(app, host=config.host, port=config.port, log_config=None, access_log=False)
            )
            loops = [
                asyncio.create_task(scheduler.run(), name="lightkeeper-scheduler"),
                asyncio.create_task(dispatcher.run(), name="lightkeeper-dispatcher"),
                asyncio.create_task(slo_loop.run(config, engine, client), name="lightkeeper-slo"),
                asyncio.create_task(
                    _every(ROLLUP_SECONDS, lambda: rollup.roll_up(engine, datetime.now(UTC)), "roll-up"),
                    name="lightkeeper-rollup",
                ),
                asyncio.create_task(
                    _every(
                        RETENTION_SECONDS,
                        lambda: rollup.apply_retention(
                            engine, datetime.now(UTC), retention_days=section.retention_days
                        ),
                        "retention",
                    ),
                    name="lightkeeper-retention",
                ),
                asyncio.create_task(
                    _every(cost_loop.EVERY_SECONDS, lambda: cost_loop.step(config, engine), "llm cost")
                ),
            ]
            watcher = asyncio.create_task(_announce_when_up(server, announce, started))
            try:
                await server.serve()
            finally:
                for task in [watcher, *loops]:
                    task.cancel()
                for task in [watcher, *loops]:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                if sampler is not None:
                    sampler.stop()
                mark_no_data(engine)
                engine.dispose()


async def _announce_when_up(
    server: object, announce: Callable[[str], None], started: Callable[[str], Awaitable[None] | None] | None
) -> None:
    """Print the status page URL once uvicorn listens (its real port when asked for port 0)."""
    while not getattr(server, "started", False):
        await asyncio.sleep(0.05)
    servers = getattr(server, "servers", [])
    host, port = "127.0.0.1", 0
    for listener in servers:
        for sock in listener.sockets:
            host, port = sock.getsockname()[:2]
    url = f"http://{host}:{port}/"
    announce(f"lightkeeper server: status page at {url}")
    if started is not None:
        result = started(url)
        if result is not None:
            await result
