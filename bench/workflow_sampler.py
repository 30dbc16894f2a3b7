"""Workflow sampler: cost of one sample on 1 000 000 rows, and request latency beside it.

Run from the repository root (needs the local PostgreSQL of the test command):

    .venv/bin/python -m bench.workflow_sampler [--rows 1000000] [--samples 15] [--requests 2000]

Builds a scratch database with 9 entity tables (`generate_series`, ~111 000 rows each:
80 % done, 5 % failed, 5 % draft, 9 % in two processing statuses, 1 % an undeclared
status, ages spread over 30 days) indexed on `(status)` and `(status, updated_at)` as
the README recommends (`--index composite` leaves the first out) and vacuumed (so the
visibility map lets PostgreSQL count from the index alone), then:

1. times `sample_once()` over the 9 entities (target: < 200 ms per sample), with the
   default two connections and with one, interleaved;
2. compares the two query shapes the sampler chooses between on the same tables, in
   interleaved rounds: the index walk it uses here, and the grouped scan it falls back
   to without such an index (buffers read, from EXPLAIN (ANALYZE, BUFFERS), and time);
3. serves a small instrumented app (uvicorn, one process; each request runs one
   indexed `SELECT` on the application's own engine) and measures request latency
   from this process in interleaved rounds: sampler off, then on with
   `interval_seconds=1` (60 times the default, so samples overlap requests all the time).

The scratch database is dropped at the end. Timings are wall-clock on a shared machine:
compare the rows of one run, not runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import services  # noqa: E402

if TYPE_CHECKING:
    from lightkeeper.sdk.workflow.query import Source
    from lightkeeper.workflow import Entity

ENTITY_TYPES = (
    "persona",
    "interview",
    "survey",
    "transcript",
    "insight",
    "report",
    "export",
    "simulation",
    "dataset",
)
TARGET_MS = 200.0


def entities() -> list[Entity]:
    from lightkeeper.workflow import Entity

    return [
        Entity(
            name,
            processing=["processing", "publishing"],
            waiting=["draft"],
            terminal=["done"],
            failed=["failed"],
            stuck_after=["30m", "2h", "24h"],
        )
        for name in ENTITY_TYPES
    ]


def build(url: str, rows: int, both_indexes: bool) -> None:
    per_table = rows // len(ENTITY_TYPES)
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT setseed(0.42)")
        for name in ENTITY_TYPES:
            conn.exec_driver_sql(
                f"CREATE TABLE {name} (id bigserial PRIMARY KEY, status text NOT NULL, "
                "updated_at timestamptz NOT NULL, payload text)"
            )
            conn.exec_driver_sql(
                f"""
                INSERT INTO {name} (status, updated_at, payload)
                SELECT CASE
                         WHEN r < 0.80 THEN 'done' WHEN r < 0.85 THEN 'failed' WHEN r < 0.90 THEN 'draft'
                         WHEN r < 0.96 THEN 'processing' WHEN r < 0.99 THEN 'publishing' ELSE 'legacy'
                       END,
                       now() - random() * interval '30 days',
                       md5(i::text)
                FROM (SELECT i, random() AS r FROM generate_series(1, {per_table}) AS i) AS g
                """
            )
            conn.exec_driver_sql(f"CREATE INDEX {name}_status_updated_at ON {name} (status, updated_at)")
            if both_indexes:
                conn.exec_driver_sql(f"CREATE INDEX {name}_status ON {name} (status)")
            conn.exec_driver_sql(f"VACUUM ANALYZE {name}")
    engine.dispose()


def time_samples(url: str, samples: int) -> tuple[list[float], list[float], list[float]]:
    """Milliseconds per sample of the 9 entities (default, then one connection) and per anchor, interleaved.

    The anchor is the least any exact count needs on one connection: a bare
    `SELECT count(*)` of each of the 9 tables, so the ratio says what the grouping, the
    stuck counts, the read-only transactions, the timeouts and the sampler's second
    connection add or save on this machine's load.
    """
    import lightkeeper
    from lightkeeper.sdk.workflow.sampler import WorkflowSampler

    sampler = lightkeeper.instrument_workflow(url, entities=entities(), background=False)
    single_engine = sa.create_engine(url, pool_size=1, max_overflow=0)
    single = WorkflowSampler(single_engine, True, entities(), (), 60.0, 10.0, connections=1)
    anchor_engine = sa.create_engine(url, pool_size=1)
    try:
        for warm in (sampler, single):  # reflection, connections, caches
            assert warm.sample_once(), "a sample failed"
        took: list[float] = []
        one: list[float] = []
        floor: list[float] = []
        with anchor_engine.connect() as conn:
            for _ in range(samples):
                began = time.perf_counter()
                for name in ENTITY_TYPES:
                    conn.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar()
                floor.append((time.perf_counter() - began) * 1000)
                for which, into in ((sampler, took), (single, one)):
                    began = time.perf_counter()
                    assert which.sample_once(), "a sample failed"
                    into.append((time.perf_counter() - began) * 1000)
        return took, one, floor
    finally:
        sampler.stop()
        single.stop()
        anchor_engine.dispose()


def compare_shapes(url: str, samples: int) -> dict[str, tuple[list[float], int]]:
    """Milliseconds per round of 9 entity statements, and buffers one round reads, per shape.

    Each statement runs as the sampler runs it (its own read-only transaction with a
    statement timeout); only the shape differs, so the ratio is the index's doing.
    """
    from datetime import UTC, datetime

    from lightkeeper.sdk.workflow import query

    engine = sa.create_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            found = [(e, query.resolve(conn, e)) for e in entities()]
            conn.commit()  # reflection began a transaction; each statement below runs in its own
            assert all(s.status_indexed and s.age_indexed for _, s in found), "the index is missing"
            shapes = {
                "index walk (used here)": found,
                "grouped scan (no index)": [(e, query.Source(s.table)) for e, s in found],
            }
            buffers = {name: _buffers(conn, pairs) for name, pairs in shapes.items()}
            statements = {  # built once, as the sampler does
                (entity.label, source.status_indexed): query.entity_query(entity, source)
                for pairs in shapes.values()
                for entity, source in pairs
            }
            took: dict[str, list[float]] = {name: [] for name in shapes}
            for _ in range(samples + 1):  # the first round warms caches and is dropped
                for name, pairs in shapes.items():
                    began = time.perf_counter()
                    for entity, source in pairs:
                        with query.guarded(conn, 10.0):
                            now = datetime.now(UTC)
                            conn.execute(
                                statements[entity.label, source.status_indexed],
                                query.cutoffs(entity, source, now),
                            ).all()
                    took[name].append((time.perf_counter() - began) * 1000)
        return {name: (values[1:], buffers[name]) for name, values in took.items()}
    finally:
        engine.dispose()


def _buffers(conn: sa.Connection, pairs: list[tuple[Entity, Source]]) -> int:
    """Shared buffers (8 kB pages) read by one round, summed from EXPLAIN (ANALYZE, BUFFERS)."""
    from datetime import UTC, datetime

    from lightkeeper.sdk.workflow import query

    total = 0
    for entity, source in pairs:
        statement = query.entity_query(entity, source).params(
            query.cutoffs(entity, source, datetime.now(UTC))
        )
        sql = statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        with conn.begin():
            plan = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}").scalar_one()
        top = plan[0]["Plan"]
        total += int(top["Shared Hit Blocks"]) + int(top["Shared Read Blocks"])
    return total


def serve(url: str, port: int, with_sampler: bool) -> None:
    """The small instrumented app (run in a subprocess by `latency`)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    import lightkeeper

    engine = sa.create_engine(url, pool_size=4)
    lookup = sa.text("SELECT status FROM persona WHERE id = :id")

    def item(request: Request) -> JSONResponse:
        with engine.connect() as conn:
            status = conn.execute(lookup, {"id": int(request.path_params["id"])}).scalar()
        return JSONResponse({"status": status})

    app = Starlette(routes=[Route("/items/{id:int}", item)])
    lightkeeper.instrument(app, service="bench", configure_logging=False, access_log=False)
    if with_sampler:
        lightkeeper.instrument_workflow(url, entities=entities(), interval_seconds=1.0, timeout_seconds=1.0)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def latency(url: str, with_sampler: bool, requests: int) -> list[float]:
    port = services.free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    mode = "on" if with_sampler else "off"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.workflow_sampler",
            "--serve",
            str(port),
            "--sampler",
            mode,
            "--url",
            url,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        services.wait_for_port(port)
        took = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for i in range(200):  # warm-up, and let the sampler start its cycle
                client.get(f"/items/{i + 1}").raise_for_status()
            for i in range(requests):
                began = time.perf_counter()
                client.get(f"/items/{i % 1000 + 1}").raise_for_status()
                took.append((time.perf_counter() - began) * 1000)
        return took
    finally:
        server.terminate()
        server.wait(timeout=10)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--index", choices=["both", "composite"], default="both")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sampler", choices=["on", "off"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.url, args.serve, args.sampler == "on")
        return

    with services.temporary_database() as plain_url:
        url = plain_url.replace("postgresql://", "postgresql+psycopg://")
        began = time.perf_counter()
        build(url, args.rows, args.index == "both")
        print(
            f"built {args.rows:,} rows in {len(ENTITY_TYPES)} tables in {time.perf_counter() - began:.1f} s, "
            f"indexes: {'(status) and ' if args.index == 'both' else ''}(status, updated_at)"
        )

        took, one, floor = time_samples(url, args.samples)
        median, anchor = statistics.median(took), statistics.median(floor)
        verdict = "meets" if median < TARGET_MS else "MISSES"
        print(
            f"one sample of {len(ENTITY_TYPES)} entities (default: 2 connections): median {median:.1f} ms, "
            f"max {max(took):.1f} ms over {args.samples} samples ({verdict} the {TARGET_MS:.0f} ms target)"
        )
        print(f"the same with connections=1: median {statistics.median(one):.1f} ms, max {max(one):.1f} ms")
        print(
            f"anchor, bare count(*) of the 9 tables on one connection: median {anchor:.1f} ms; "
            f"sample / anchor = {median / anchor:.2f} (one connection: {statistics.median(one) / anchor:.2f})"
        )
        print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

        shapes = compare_shapes(url, args.samples)
        print(f"\nquery shapes on the same tables, {args.samples} interleaved rounds of 9 statements")
        print("| shape | median ms | min ms | buffers read |")
        print("|---|---:|---:|---:|")
        for name, (values, buffers) in shapes.items():
            print(f"| {name} | {statistics.median(values):.1f} | {min(values):.1f} | {buffers} |")
        walk, scan = (statistics.median(values) for values, _ in shapes.values())
        print(f"index walk / grouped scan = {walk / scan:.2f}; load average {os.getloadavg()[0]:.1f}")

        results: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.rounds):
            for with_sampler in (False, True):
                results[with_sampler] += latency(url, with_sampler, args.requests)
        print(f"\nrequest latency, {args.rounds} interleaved rounds x {args.requests} sequential requests")
        print("| sampler | p50 ms | p95 ms | p99 ms | max ms |")
        print("|---|---:|---:|---:|---:|")
        for with_sampler, values in results.items():
            label = "running every 1 s" if with_sampler else "off"
            print(
                f"| {label} | {pct(values, 0.5):.2f} | {pct(values, 0.95):.2f} | "
                f"{pct(values, 0.99):.2f} | {max(values):.2f} |"
            )
        ratio = pct(results[True], 0.5) / pct(results[False], 0.5)
        print(f"\np50 with sampler / without = {ratio:.2f}")


if __name__ == "__main__":
    main()
