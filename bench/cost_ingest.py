"""LLM cost event ingest into the SQLite store, next to a bare anchor (issue 13 target: >= 5 000 events/s).

Run from the repository root:

    .venv/bin/python -m bench.cost_ingest [--events 50000] [--rounds 3] [--clients 2]

Four variants, measured in interleaved rounds with fresh event ids each time, so every
event is new and each store grows alike:

- **lightkeeper http**: the real `lightkeeper server` process (its uvicorn, middleware,
  loops) on a SQLite file, taking `POST /api/llm/events` batches of 1000 (the API's
  maximum) with the ingest token: body cap, pydantic validation, the idempotent insert
  and the daily roll-up in one transaction;
- **anchor http**: a bare FastAPI app under the same uvicorn defaults whose one endpoint
  parses the same body into a plain pydantic model and runs `INSERT OR IGNORE` through
  the stdlib `sqlite3` (same WAL and `synchronous=NORMAL` pragmas, UNIQUE event id, no
  roll-up): the least a Python endpoint can do and still be idempotent;
- **lightkeeper store** and **anchor store**: the same two without HTTP, in this process
  (`CostBatch.model_validate_json` + `cost.ingest.store_events`, against `json.loads` +
  the same `INSERT OR IGNORE`), which shows where the time goes.

`--clients` threads post batches concurrently, each on one keep-alive connection. After
the rounds, the first five batches are posted again (a retried upload): every event must
come back as a duplicate. Then both stores are checked: the server's event count and
the sum of its roll-up's `calls` and `cost_usd` must equal what was sent, so a fast but
wrong ingest stops the run. Servers run on CPU 0, this process on CPU 1 when there are
two. Server CPU time per event (from /proc) is the steadier figure on a shared machine:
compare the rows of one run, not runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import Request  # at module level: FastAPI resolves the string annotation here
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import services  # noqa: E402

BATCH = 1000
TOKEN = "bench-ingest-token-0123456789abcdef"  # a throwaway local token
MODELS = (
    ("openai", "gpt-4o", 2.5e-6, 10e-6),
    ("openai", "gpt-4o-mini", 0.15e-6, 0.6e-6),
    ("anthropic", "claude-sonnet-4", 3e-6, 15e-6),
    ("anthropic", "claude-3-5-haiku", 0.8e-6, 4e-6),
)
OPERATIONS = ("summarise", "classify", "chat", "extract", "embed")
ANCHOR_COMMAND = [sys.executable, "-m", "bench.cost_ingest", "--serve-anchor"]
ANCHOR_TABLE = """CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, at TEXT NOT NULL, provider TEXT NOT NULL,
    model TEXT NOT NULL, operation TEXT NOT NULL, status TEXT NOT NULL, input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL, cache_read_tokens INTEGER NOT NULL, cache_write_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL, cost_usd REAL, price_source TEXT NOT NULL,
    latency_seconds REAL NOT NULL, user_hash TEXT, workspace_id TEXT, request_id TEXT)"""
ANCHOR_INSERT = "INSERT OR IGNORE INTO events VALUES (NULL" + ", ?" * 17 + ")"
ANCHOR_COLUMNS = (
    "event_id",
    "timestamp",
    "provider",
    "model",
    "operation",
    "status",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_usd",
    "price_source",
    "latency_seconds",
    "user_hash",
    "workspace_id",
    "request_id",
)


def event(prefix: str, n: int, start: datetime) -> dict[str, Any]:
    """One event as the SDK sends it; varied so the roll-up sees ~30 days x 4 x 5 x 20 keys."""
    provider, model, per_in, per_out = MODELS[n % 4]
    failed = n % 50 == 0
    tokens_in, tokens_out, cached = 400 + (n * 37) % 3000, 50 + (n * 11) % 400, (n * 7) % 300
    cost = None if n % 997 == 0 else (0.0 if failed else round(tokens_in * per_in + tokens_out * per_out, 9))
    return {
        "event_id": f"{prefix}{n:012d}",
        "timestamp": (start + timedelta(seconds=(n * 53) % (30 * 86400))).isoformat(),
        "provider": provider,
        "model": model,
        "operation": OPERATIONS[(n // 4) % 5],
        "status": "error" if failed else "ok",
        "input_tokens": tokens_in,
        "output_tokens": 0 if failed else tokens_out,
        "cache_read_tokens": cached,
        "cache_write_tokens": 0,
        "reasoning_tokens": (n * 3) % 64 if provider == "openai" else 0,
        "cost_usd": cost,
        "price_source": "genai-prices 0.0.40",
        "latency_seconds": 0.2 + (n % 40) / 10,
        "user_hash": f"{(n * 7919) % 5000:032x}",
        "workspace_id": f"ws{n % 20}",
        "request_id": f"req-{prefix}-{n}",
    }


def bodies(prefix: str, total: int, start: datetime) -> tuple[list[bytes], float]:
    """The batches as bytes (encoded before timing) and the priced cost they carry."""
    out, cost = [], 0.0
    for first in range(0, total, BATCH):
        events = [event(prefix, n, start) for n in range(first, min(first + BATCH, total))]
        cost += sum(e["cost_usd"] or 0.0 for e in events)
        out.append(json.dumps({"events": events}).encode())
    return out, cost


# --- the anchor ---------------------------------------------------------------------------


class AnchorEvent(BaseModel):
    """The event's fields with plain types: no bounds, no hash check, unknown fields ignored."""

    event_id: str
    timestamp: datetime
    provider: str
    model: str
    operation: str
    status: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float | None
    price_source: str = ""
    latency_seconds: float = 0.0
    user_hash: str | None = None
    workspace_id: str | None = None
    request_id: str | None = None


class AnchorBatch(BaseModel):
    events: list[AnchorEvent]


class AnchorStore:
    """One sqlite3 connection (the app's pragmas) behind a lock: SQLite has one writer anyway."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        for pragma in ("busy_timeout = 5000", "journal_mode = WAL", "synchronous = NORMAL"):
            self.conn.execute(f"PRAGMA {pragma}")
        self.conn.execute(ANCHOR_TABLE)
        self.lock = threading.Lock()

    def insert(self, rows: list[tuple[Any, ...]]) -> int:
        with self.lock:
            before = self.conn.total_changes
            self.conn.execute("BEGIN")
            self.conn.executemany(ANCHOR_INSERT, rows)
            self.conn.execute("COMMIT")
            return self.conn.total_changes - before


def anchor_rows_from_models(batch: AnchorBatch) -> list[tuple[Any, ...]]:
    return [
        (e.event_id, e.timestamp.isoformat(), *(getattr(e, c) for c in ANCHOR_COLUMNS[2:]))
        for e in batch.events
    ]


def anchor_rows_from_json(body: bytes) -> list[tuple[Any, ...]]:
    return [tuple(e.get(c) for c in ANCHOR_COLUMNS) for e in json.loads(body)["events"]]


def anchor_app(path: Path) -> Any:
    from fastapi import FastAPI
    from starlette.concurrency import run_in_threadpool

    store = AnchorStore(path)
    app = FastAPI()

    @app.post("/api/llm/events")
    async def receive(request: Request) -> dict[str, int]:
        batch = AnchorBatch.model_validate_json(await request.body())
        stored = await run_in_threadpool(store.insert, anchor_rows_from_models(batch))
        return {"received": len(batch.events), "stored": stored, "duplicates": len(batch.events) - stored}

    return app


# --- processes and timing ------------------------------------------------------------------


def _pinned(cpu: int | None) -> Callable[[], None] | None:
    return None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def server(
    command: list[str], env: dict[str, str], cwd: Path, log: Path, cpu: int | None, port: int
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, preexec_fn=_pinned(cpu)
        )
    try:
        try:
            services.wait_for_port(port, timeout=60)
        except TimeoutError:
            raise SystemExit(f"{command[0]} did not start:\n{log.read_text()[-3000:]}") from None
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def post_all(url: str, batches: list[bytes], clients: int) -> list[dict[str, int]]:
    """Every batch POSTed once, `clients` at a time; any non-200 stops the run."""
    import httpx

    local = threading.local()
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    def send(body: bytes) -> dict[str, int]:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=60)
        response = local.client.post(url, content=body, headers=headers)
        if response.status_code != 200:
            raise SystemExit(f"{url}: {response.status_code} {response.text[:500]}")
        answer: dict[str, int] = response.json()
        return answer

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(send, batches))


def timed(work: Callable[[], int], pid: int | None) -> dict[str, float]:
    cpu_before = cpu_seconds(pid) if pid else time.process_time()
    started = time.perf_counter()
    stored = work()
    wall = time.perf_counter() - started
    cpu = (cpu_seconds(pid) if pid else time.process_time()) - cpu_before
    return {"stored": stored, "events_s": stored / wall, "cpu_us": cpu / stored * 1e6}


def check_lightkeeper_store(url: str, events: int, cost: float) -> None:
    from sqlalchemy import func, select

    from lightkeeper.server.store.db import make_engine
    from lightkeeper.server.store.tables import llm_daily, llm_events

    engine = make_engine(url)
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(llm_events)).scalar_one()
        calls, rolled = conn.execute(
            select(func.sum(llm_daily.c.calls), func.sum(llm_daily.c.cost_usd))
        ).one()
    engine.dispose()
    if not (stored == calls == events and abs(rolled - cost) < 1e-6 * max(cost, 1)):
        raise SystemExit(
            f"store disagrees: {stored} events, roll-up {calls} calls ${rolled:.6f}; "
            f"sent {events} ${cost:.6f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000, help="events per variant and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=2, help="concurrent HTTP clients")
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    parser.add_argument("--serve-anchor", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_anchor:
        import uvicorn

        uvicorn.run(anchor_app(Path(args.serve_anchor)), host="127.0.0.1", port=args.port, log_level="error")
        return

    from lightkeeper.server.cost.ingest import store_events
    from lightkeeper.server.cost.schema import CostBatch
    from lightkeeper.server.store.db import make_engine, upgrade

    server_cpu, own_cpu = (0, 1) if args.pin and (os.cpu_count() or 1) >= 2 else (None, None)
    if own_cpu is not None:
        os.sched_setaffinity(0, {own_cpu})
    # the last 30 days, so the server's raw-event retention (90 days) never deletes mid-run
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=30)
    script = Path(sys.executable).with_name("lightkeeper")
    fallback = "import sys; from lightkeeper.cli import main; sys.argv[0] = 'lightkeeper'; main()"
    lk_command = [str(script)] if script.exists() else [sys.executable, "-c", fallback]
    load_before = os.getloadavg()
    variants = ("lightkeeper http", "anchor http", "lightkeeper store", "anchor store")
    results: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    sent_cost = 0.0

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        lk_port, anchor_port = services.free_port(), services.free_port()
        lk_db = f"sqlite:///{folder / 'server.db'}"
        env = {**os.environ, "LIGHTKEEPER_LLM_INGEST_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
        env["LIGHTKEEPER_ADMIN_TOKEN"] = "bench-admin-token-0123456789abcdef"  # not generated and printed
        local = make_engine(f"sqlite:///{folder / 'local.db'}")
        upgrade(local)
        local_anchor = AnchorStore(folder / "local-anchor.db")
        with (
            server(
                [*lk_command, "server", "--db", lk_db, "--port", str(lk_port)],
                env,
                folder,  # no ./lightkeeper.yaml there: no probes, no budgets
                folder / "server.log",
                server_cpu,
                lk_port,
            ) as lk,
            server(
                [*ANCHOR_COMMAND, str(folder / "anchor.db"), "--port", str(anchor_port)],
                env,
                ROOT,
                folder / "anchor.log",
                server_cpu,
                anchor_port,
            ) as anchor,
        ):
            urls = {
                "lightkeeper http": (f"http://127.0.0.1:{lk_port}/api/llm/events", lk.pid),
                "anchor http": (f"http://127.0.0.1:{anchor_port}/api/llm/events", anchor.pid),
            }
            for name, (url, _) in urls.items():  # warm-up, not timed; counted in the store check
                warm, cost = bodies(f"warm{name[0]}", 2 * BATCH, start)
                post_all(url, warm, args.clients)
                if name == "lightkeeper http":
                    sent_cost += cost

            def run(name: str, batches: list[bytes]) -> dict[str, float]:
                if name in urls:
                    url, pid = urls[name]
                    return timed(lambda: sum(a["stored"] for a in post_all(url, batches, args.clients)), pid)
                if name == "lightkeeper store":
                    return timed(
                        lambda: sum(
                            store_events(local, CostBatch.model_validate_json(b).events) for b in batches
                        ),
                        None,
                    )
                return timed(
                    lambda: sum(local_anchor.insert(anchor_rows_from_json(b)) for b in batches), None
                )

            for round_number in range(args.rounds):
                for name in variants:
                    batches, cost = bodies(f"r{round_number}{name[0]}{name[-1]}", args.events, start)
                    results[name].append(run(name, batches))
                    if results[name][-1]["stored"] != args.events:
                        raise SystemExit(f"{name}: stored {results[name][-1]['stored']} of {args.events}")
                    if name == "lightkeeper http":
                        sent_cost += cost
                        retry = batches[:5]
            retried = timed(
                lambda: sum(a["duplicates"] for a in post_all(urls["lightkeeper http"][0], retry, 1)),
                lk.pid,
            )
            if retried["stored"] != 5 * BATCH:
                raise SystemExit(f"retried batches: {retried['stored']} duplicates of {5 * BATCH}")
            check_lightkeeper_store(lk_db, 2 * BATCH + args.rounds * args.events, sent_cost)
        local.dispose()

    load = os.getloadavg()
    print(
        f"LLM cost ingest into SQLite, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}; {args.rounds} interleaved rounds x {args.events} events in "
        f"batches of {BATCH}, {args.clients} HTTP clients"
        f"{' (servers on CPU 0, this process on CPU 1)' if server_cpu is not None else ''}; "
        "medians over rounds"
    )
    print()
    print("| variant | events/s | CPU µs/event | lightkeeper / anchor events/s |")
    print("|---|---:|---:|---:|")
    for name in variants:
        rounds = results[name]
        partner = name.replace("lightkeeper", "anchor")
        ratio = "-"
        if partner != name:
            pairs = zip(rounds, results[partner], strict=True)
            ratio = f"{statistics.median(a['events_s'] / b['events_s'] for a, b in pairs):.2f}"
        print(
            f"| {name} | {statistics.median(r['events_s'] for r in rounds):,.0f} | "
            f"{statistics.median(r['cpu_us'] for r in rounds):.1f} | {ratio} |"
        )
    print()
    lk_rate = statistics.median(r["events_s"] for r in results["lightkeeper http"])
    verdict = "met" if lk_rate >= 5000 else "NOT met"
    print(f"target >= 5,000 events/s through POST /api/llm/events: {lk_rate:,.0f} ({verdict})")
    print(
        f"retried upload (5 batches again, 1 client): {retried['stored']:.0f} of {5 * BATCH} "
        f"answered as duplicates, {retried['events_s']:,.0f} events/s"
    )
    print(f"server store checked: events = roll-up calls, roll-up cost = ${sent_cost:,.2f} sent")
    before, after = (" ".join(f"{x:.2f}" for x in values) for values in (load_before, load))
    print(f"load average (1, 5, 15 min): {before} at start, {after} at end")


if __name__ == "__main__":
    main()
