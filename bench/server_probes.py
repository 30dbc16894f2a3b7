"""How many probes one `lightkeeper server` process keeps on time, and what a year of history costs.

    .venv/bin/python bench/server_probes.py                          # 1000,2500,5000,10000 probes, 90 s each
    .venv/bin/python bench/server_probes.py --probes 10000 --seconds 60
    .venv/bin/python bench/server_probes.py --skip-scale             # only the year of history

Scale: for each N, a fresh worker process (the "server") runs the real `Scheduler` on a
fresh SQLite store in a temp dir with N HTTP probes at a 60 s interval, plus the roll-up
loop every 30 s as `lightkeeper server` does. The probes hit a target in another process
(`probe_target.py`), so the target's CPU is not the server's. Reported: executions/s
sustained after a warm-up (N/60 is what the schedule asks), schedule lag p50/p99/max over
every run (planned start -> start, warm-up included), the worker's CPU (user+system over
wall time; 100 % = one core) and peak RSS, and the 1-minute load average, because the
machine is shared and numbers move with it.

Database size per probe per day: SQLite's `dbstat` gives the bytes of each table and its
indexes, so bytes per raw result, per roll-up row and per state change are measured on
the rows the run wrote (the scale run's minute roll-ups; the year's day and month rows).
Per probe per day that gives
  * raw: 1440 results (60 s interval), kept `retention_days` (7) then deleted;
  * kept forever ("after roll-up"): one day row + 1/30.4 month row + that day's state
    changes and incidents (the year's synthetic average);
  * the bounded working set a probe holds at steady state: 7 days of raw, 2 days of
    minute rows, 35 days of hour rows (retention in `store/rollup.py`).
The target (< 50 KB per probe per day) is checked against "kept forever".

History: 100 probes with a year of state changes and incidents (a few outages a month
each, and server restarts as no-data gaps); day roll-ups are written by the store's own
`rollup.reroll` from those changes, given latency sketches, and merged into month rows by
`rollup.reroll` again. Then `queries.uptime` over 365 days, the status page (build +
render, uncached), and the HTTP routes `/sla/uptime?window=365d` and `/` through the app.
This is a benchmark, not a test: it never fails. `LK_BENCH_TRACE=1` prints each worker's progress
every half second on stderr (pending writes, runs in flight, last lag).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DAY_SECONDS = 86400
INTERVAL = 60
RETENTION_DAYS = 7
MINUTE_DAYS, HOUR_DAYS = 2, 35  # roll-up retention, as in store/rollup.py
SLOW_CALL_RUNS = 7


# --- shared ------------------------------------------------------------------------------
def _fresh_engine(folder: Path) -> Any:
    from lightkeeper.server.store.db import make_engine, upgrade

    engine = make_engine(f"sqlite:///{folder / 'bench.db'}")
    upgrade(engine)
    return engine


def _table_bytes(engine: Any) -> dict[str, int]:
    """Bytes per table, its indexes included (SQLite's dbstat virtual table)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        owner = dict(conn.execute(text("SELECT name, tbl_name FROM sqlite_master")).all())
        sizes: dict[str, int] = {}
        for name, size in conn.execute(text("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")):
            table = owner.get(name, name)
            sizes[table] = sizes.get(table, 0) + int(size)
    return sizes


def _count(engine: Any, table: Any, *where: Any) -> int:
    from sqlalchemy import func, select

    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def _probe_rows(names: list[str], target: Callable[[str], str], component: Callable[[int], str]) -> list[Any]:
    from pydantic import TypeAdapter

    from lightkeeper.spec.probes import Probe

    adapter: TypeAdapter[Probe] = TypeAdapter(Probe)
    now = datetime.now(UTC)
    rows = []
    for index, name in enumerate(names):
        probe = adapter.validate_python(
            {
                "name": name,
                "type": "http",
                "target": target(name),
                "interval_seconds": INTERVAL,
                "timeout_seconds": 10,
                "component": component(index),
            }
        )
        config = probe.model_dump(mode="json", by_alias=True, exclude_unset=True)
        rows.append({"name": name, "source": "spec", "config": config, "created_at": now, "updated_at": now})
    return rows


def _insert(engine: Any, table: Any, rows: list[dict[str, Any]], chunk: int = 5000) -> None:
    with engine.begin() as conn:
        for at in range(0, len(rows), chunk):
            conn.execute(table.insert(), rows[at : at + chunk])


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- scale: one worker process per N ------------------------------------------------------
async def _scale_worker(
    count: int, port: int, seconds: float, warmup: float, concurrency: int, client_kind: str
) -> dict[str, Any]:
    import httpx

    from lightkeeper.server.engine.scheduler import Scheduler, SchedulerOptions
    from lightkeeper.server.store import rollup
    from lightkeeper.server.store.tables import probes, results, rollups

    with tempfile.TemporaryDirectory(prefix="lk-bench-") as folder:
        engine = _fresh_engine(Path(folder))
        names = [f"probe-{i:05d}" for i in range(count)]
        _insert(engine, probes, _probe_rows(names, lambda n: f"http://127.0.0.1:{port}/{n}", lambda i: ""))
        # like `lightkeeper server` (server/main.py), with the roll-up loop beside it; `--client main`
        # passes main.py's general-purpose client instead of the scheduler's own probe client
        async with httpx.AsyncClient(timeout=10) as client:
            options = SchedulerOptions(concurrency=concurrency, lag_samples=count * 4)
            injected = client if client_kind == "main" else None
            scheduler = Scheduler(engine, options=options, http_client=injected)

            async def roll_up_loop() -> None:
                while True:
                    await asyncio.sleep(30)
                    await asyncio.to_thread(rollup.roll_up, engine, datetime.now(UTC))

            tasks = [asyncio.create_task(scheduler.run()), asyncio.create_task(roll_up_loop())]
            started = time.monotonic()
            await asyncio.sleep(warmup)
            done_before, cpu_before, measured_from = scheduler.completed, _cpu_seconds(), time.monotonic()
            most_pending = 0
            while time.monotonic() - started < seconds:
                await asyncio.sleep(0.5)
                most_pending = max(most_pending, scheduler.pending_writes)
                if os.environ.get("LK_BENCH_TRACE"):
                    print(
                        f"{time.monotonic() - started:5.1f} s pending {scheduler.pending_writes} "
                        f"done {scheduler.completed} in flight {scheduler.in_flight} "
                        f"last lag {scheduler.lag().last_seconds:.3f}",
                        file=sys.stderr,
                    )
                for task in tasks:
                    if task.done():
                        task.result()  # a crashed loop ends the run with its error
            done_after, cpu_after, measured_to = scheduler.completed, _cpu_seconds(), time.monotonic()
            lag, backlog = scheduler.lag(), scheduler.pending_writes
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        wall = measured_to - measured_from
        written = _count(engine, results)
        failed = _count(engine, results, results.c.status != "up")
        # roll every minute that has data, to measure a minute row (a clock two minutes ahead)
        rollup.roll_up(engine, datetime.now(UTC) + timedelta(minutes=2), resolutions=("minute",))
        sizes = _table_bytes(engine)
        minute_rows = _count(engine, rollups, rollups.c.resolution == "minute")
        engine.dispose()
    return {
        "probes": count,
        "asked_per_s": count / INTERVAL,
        "executions_per_s": (done_after - done_before) / wall,
        "lag_p50_s": lag.p50_seconds,
        "lag_p99_s": lag.p99_seconds,
        "lag_max_s": lag.max_seconds,
        "lag_samples": lag.samples,
        "cpu_percent": 100 * (cpu_after - cpu_before) / wall,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "load_1m": os.getloadavg()[0],
        "results": written,
        "write_backlog": backlog,
        "write_backlog_max": most_pending,
        "failed": failed,
        "bytes_per_result": sizes.get("results", 0) / max(written, 1),
        "bytes_per_minute_row": sizes.get("rollups", 0) / max(minute_rows, 1),
    }


@contextlib.contextmanager
def _target() -> Iterator[int]:
    process = subprocess.Popen(
        [sys.executable, str(HERE / "probe_target.py")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        yield int(process.stdout.readline())
    finally:
        process.terminate()
        process.wait(timeout=10)


def _scale(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    with _target() as port:
        for count in args.probes:
            command = [
                sys.executable,
                __file__,
                "--worker",
                str(count),
                "--target-port",
                str(port),
                "--seconds",
                str(args.seconds),
                "--warmup",
                str(args.warmup),
                "--concurrency",
                str(args.concurrency),
                "--client",
                args.client,
            ]
            done = subprocess.run(command, capture_output=True, text=True, timeout=args.seconds + 300)
            if done.returncode != 0:
                print(f"N={count} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
                break
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(
                f"  N={count}: {row['executions_per_s']:.1f}/s, p99 lag {row['lag_p99_s']:.3f} s", flush=True
            )
    return rows


# --- a year of history for 100 probes ------------------------------------------------------
def _synthesise_year(engine: Any, count: int, now: datetime, rng: random.Random) -> dict[str, int]:
    """State changes and incidents for a year, then day and month roll-ups by the store's code."""
    from sqlalchemy import bindparam, update

    from lightkeeper.server.store import rollup, sketch
    from lightkeeper.server.store.tables import incidents, probe_state, probes, rollups, state_changes

    first = rollup.floor(now - timedelta(days=366), "day")
    today = rollup.floor(now, "day")
    names = [f"probe-{i:03d}" for i in range(count)]
    _insert(
        engine,
        probes,
        _probe_rows(names, lambda n: f"https://example.test/{n}", lambda i: f"component-{i % 20}"),
    )
    changes: list[dict[str, Any]] = []
    opened: list[dict[str, Any]] = []
    for name in names:
        changes.append({"probe": name, "at": first, "state": "up"})
        at = first
        while True:  # ~3 outages a month, 1-40 minutes each; now and then a server restart
            at += timedelta(seconds=rng.expovariate(3 / (30 * DAY_SECONDS)))
            length = timedelta(seconds=rng.uniform(60, 2400))
            if at + length >= now:
                break
            restart = rng.random() < 0.1
            changes.append({"probe": name, "at": at, "state": "no_data" if restart else "down"})
            changes.append({"probe": name, "at": at + length, "state": "up"})
            if not restart:
                opened.append(
                    {
                        "probe": name,
                        "started_at": at,
                        "resolved_at": at + length,
                        "cause": "expected status 200, got 503",
                    }
                )
            at += length
    _insert(engine, state_changes, changes)
    _insert(engine, incidents, opened)
    _insert(
        engine,
        probe_state,
        [{"probe": n, "state": "up", "last_checked_at": now, "last_latency_ms": 42.0} for n in names],
    )
    day = first
    while day < today:
        with engine.begin() as conn:
            rollup.reroll(conn, "day", day)
        day += timedelta(days=1)
    # a day's 1440 checks as the hour level would have merged them: a pool of real sketches
    pool = [
        sketch.encode(sketch.build([rng.lognormvariate(3.5, 0.4) for _ in range(1440)])) for _ in range(40)
    ]
    with engine.begin() as conn:
        days = conn.execute(
            rollups.select()
            .with_only_columns(rollups.c.probe, rollups.c.bucket_start)
            .where(rollups.c.resolution == "day")
        ).all()
        conn.execute(
            update(rollups)
            .where(
                rollups.c.probe == bindparam("b_probe"),
                rollups.c.resolution == "day",
                rollups.c.bucket_start == bindparam("b_day"),
            )
            .values(
                checks=1440,
                failures=bindparam("b_failures"),
                latency_sum_ms=1440 * 35.0,
                sketch=bindparam("b_sketch"),
            ),
            [
                {"b_probe": p, "b_day": d, "b_failures": rng.randint(0, 3), "b_sketch": rng.choice(pool)}
                for p, d in days
            ],
        )
    month = rollup.floor(first, "month")
    while rollup.next_bucket(month, "month") <= today:
        with engine.begin() as conn:
            rollup.reroll(conn, "month", month)
        month = rollup.next_bucket(month, "month")
    return {"changes": len(changes), "incidents": len(opened), "day_rows": len(days)}


def _timed_ms(action: Callable[[], object], runs: int = SLOW_CALL_RUNS) -> tuple[float, float, float]:
    """(first call, median of the following calls, median CPU of those) in milliseconds.

    CPU time is shown beside wall time because the machine is shared: wall time there
    includes waiting for a core.
    """
    times, cpu = [], []
    for _ in range(runs + 1):
        started, started_cpu = time.perf_counter(), time.process_time()
        action()
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return times[0], statistics.median(times[1:]), statistics.median(cpu[1:])


def _history(count: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient
    from pydantic import SecretStr

    from lightkeeper.server.config import ServerConfig
    from lightkeeper.server.http import status_page
    from lightkeeper.server.http.app import create_app
    from lightkeeper.server.store import queries
    from lightkeeper.server.store.tables import incidents, rollups, state_changes
    from lightkeeper.spec.server import ServerSection

    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="lk-bench-") as folder:
        engine = _fresh_engine(Path(folder))
        started = time.perf_counter()
        made = _synthesise_year(engine, count, now, random.Random(11))
        made_s = time.perf_counter() - started
        section = ServerSection()
        timings = {
            "uptime_365d": _timed_ms(lambda: queries.uptime(engine, None, now - timedelta(days=365), now)),
            "daily_bars_90d": _timed_ms(lambda: queries.daily_bars(engine, section.status_page_days)),
            "status_page": _timed_ms(
                lambda: status_page.render(
                    "status.html.j2", {**status_page.build(engine, section, datetime.now(UTC)), "local": str}
                )
            ),
        }
        config = ServerConfig(admin_token=SecretStr("bench-token-0123456789"))
        with TestClient(create_app(config, engine, instrument=False)) as client:

            def get(path: str, **params: str) -> None:
                response = client.get(path, params=params)
                response.raise_for_status()

            timings["http_sla_uptime_365d"] = _timed_ms(lambda: get("/sla/uptime", window="365d"))
            timings["http_status_page"] = _timed_ms(lambda: get("/"))  # first uncached, then its 5 s cache
        sizes = _table_bytes(engine)
        day_rows = _count(engine, rollups, rollups.c.resolution == "day")
        month_rows = _count(engine, rollups, rollups.c.resolution == "month")
        change_rows, incident_rows = _count(engine, state_changes), _count(engine, incidents)
        engine.dispose()
    probe_days = count * 366
    return {
        "probes": count,
        "made": made,
        "synthesis_s": made_s,
        "timings_ms": timings,
        "bytes_per_rollup_row": sizes.get("rollups", 0) / max(day_rows + month_rows, 1),
        "state_change_bytes_per_probe_day": sizes.get("state_changes", 0) / probe_days,
        "incident_bytes_per_probe_day": sizes.get("incidents", 0) / probe_days,
        "changes_per_probe_day": change_rows / probe_days,
        "incidents_per_probe_day": incident_rows / probe_days,
    }


# --- report ------------------------------------------------------------------------------
def _scale_table(scale: list[dict[str, Any]]) -> None:
    print(
        "| probes @60 s | asked/s | executions/s | lag p50 | lag p99 | lag max | CPU (100 % = 1 core) "
        "| peak RSS | load 1m | failed / results | write backlog |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in scale:
        lag = " | ".join(f"{r[key] * 1000:.0f} ms" for key in ("lag_p50_s", "lag_p99_s", "lag_max_s"))
        print(
            f"| {r['probes']} | {r['asked_per_s']:.1f} | {r['executions_per_s']:.1f} | {lag} "
            f"| {r['cpu_percent']:.0f} % | {r['rss_mb']:.0f} MB | {r['load_1m']:.2f} "
            f"| {r['failed']} / {r['results']} | {r['write_backlog']} |"
        )


def _history_table(history: dict[str, Any]) -> None:
    made = history["made"]
    print(
        f"\nA year of history for {history['probes']} probes: {made['changes']} state changes, "
        f"{made['incidents']} incidents, {made['day_rows']} day roll-ups "
        f"(synthesised in {history['synthesis_s']:.0f} s)\n"
    )
    print("| read | first call | median of next 7 | its CPU time | target |")
    print("|---|---:|---:|---:|---:|")
    labels = {
        "uptime_365d": "`queries.uptime` 365 d, all probes",
        "daily_bars_90d": "`queries.daily_bars` 90 d",
        "status_page": "status page build + render (uncached)",
        "http_sla_uptime_365d": "HTTP `GET /sla/uptime?window=365d`",
        "http_status_page": "HTTP `GET /` (first uncached, then its 5 s cache)",
    }
    for key, label in labels.items():
        first, median, cpu = history["timings_ms"][key]
        print(f"| {label} | {first:.1f} ms | {median:.1f} ms | {cpu:.1f} ms | < 100 ms |")


def _size_table(last: dict[str, Any], history: dict[str, Any]) -> None:
    """Bytes per probe per day from measured bytes per row (method in the module docstring)."""
    raw_day = last["bytes_per_result"] * DAY_SECONDS / INTERVAL
    row = history["bytes_per_rollup_row"]
    kept_day = (
        row
        + row / 30.44
        + history["state_change_bytes_per_probe_day"]
        + history["incident_bytes_per_probe_day"]
    )
    working = (
        RETENTION_DAYS * raw_day + MINUTE_DAYS * 1440 * last["bytes_per_minute_row"] + HOUR_DAYS * 24 * row
    )
    changes, opened = history["changes_per_probe_day"], history["incidents_per_probe_day"]
    print("\nDatabase per probe (SQLite `dbstat`: tables and their indexes)\n")
    print("| what | size |")
    print("|---|---:|")
    print(f"| one raw result | {last['bytes_per_result']:.0f} B |")
    print(f"| one roll-up row: minute / day and month | {last['bytes_per_minute_row']:.0f} B / {row:.0f} B |")
    print(
        f"| raw results per probe per day (1440 checks; deleted after {RETENTION_DAYS} d) "
        f"| {raw_day / 1024:.1f} KB |"
    )
    print(
        f"| **kept per probe per day after roll-up** (day row, month share, {changes:.2f} state changes, "
        f"{opened:.2f} incidents) | **{kept_day / 1024:.2f} KB** (target < 50 KB) |"
    )
    print(
        f"| bounded working set per probe (7 d raw, 2 d minute, 35 d hour rows) | {working / 1024:.0f} KB |"
    )


def _report(command: str, load: float, scale: list[dict[str, Any]], history: dict[str, Any] | None) -> None:
    print(f"\n`{command}`\n\n{os.cpu_count()} cores; load average {load:.2f} at start\n")
    if scale:
        _scale_table(scale)
    if history:
        _history_table(history)
    if scale and history:
        _size_table(scale[-1], history)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--probes", default="1000,2500,5000,10000", help="comma-separated N to scale through")
    parser.add_argument("--seconds", type=float, default=90.0, help="run time of each N (warm-up included)")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds before executions/s is measured")
    parser.add_argument("--concurrency", type=int, default=200, help="SchedulerOptions.concurrency")
    parser.add_argument(
        "--client", choices=["scheduler", "main"], default="scheduler", help="which httpx client probes use"
    )
    parser.add_argument("--history-probes", type=int, default=100)
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--skip-history", action="store_true")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--target-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        row = asyncio.run(
            _scale_worker(
                args.worker, args.target_port, args.seconds, args.warmup, args.concurrency, args.client
            )
        )
        print(json.dumps(row))
        return
    args.probes = [int(n) for n in args.probes.split(",") if n.strip()]
    command = shlex.join([".venv/bin/python", "bench/server_probes.py", *sys.argv[1:]])
    load = os.getloadavg()[0]
    scale = [] if args.skip_scale else _scale(args)
    history = None if args.skip_history else _history(args.history_probes)
    _report(command, load, scale, history)


if __name__ == "__main__":
    main()
