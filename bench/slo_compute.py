"""SLO engine cost in the embedded store (issue 12 targets: < 1 s for 100 SLOs, < 100 KB per SLO per day).

Run: .venv/bin/python bench/slo_compute.py [slos] [days]     (defaults: 100 SLOs, 30 days)

Synthesises one target's counters per SLO at a 15 s scrape interval into a temporary
SQLite store, packed by the server's own storage encoder (`server.slo.samples.encode`,
one row per SLO and hour exactly as the scraper's writer leaves them), then times what
`/sla/status` computes for every SLO (SLI and budget over the 30-day period, burn rates
of all seven windows) through `server.slo.evaluate.state`: cold (a fresh process),
warm (nothing changed), and in the steady state, where each SLO gained one scrape through
the real writer (`samples.append`) since the last evaluation. It also reports the table's
size per SLO per day. Each time is given as wall clock and as this process's CPU time:
on a shared machine the CPU time is the steadier figure. Traffic is random (seeded)
around 200 requests per scrape with a varying error share and a restart every few
days, so the compression is not flattered by constant deltas; four traffic patterns are
cycled over the SLOs to keep setup short.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from lightkeeper.server.slo import evaluate, samples
from lightkeeper.server.store.db import make_engine, upgrade
from lightkeeper.spec.models import Spec

SCRAPE = 15
END = datetime(2026, 12, 1, tzinfo=UTC)


def hourly_rows(seed: int, days: int) -> list[tuple[datetime, int, bytes, bytes]]:
    """(hour, count, good blob, total blob) for one target's `days` of scrapes."""
    rng = random.Random(seed)
    start = END - timedelta(days=days)
    good = total = 0
    hours: dict[datetime, list[samples.Sample]] = {}
    restart_every = rng.randint(2, 5) * 86400 // SCRAPE
    for n in range(days * 86400 // SCRAPE):
        if n and n % restart_every == 0:
            good = total = 0
        events = rng.randint(150, 250)
        bad = sum(1 for _ in range(3) if rng.random() < 0.02 * (1 + (n // 2000) % 3))
        total += events
        good += events - bad
        at = start + timedelta(seconds=n * SCRAPE)
        hours.setdefault(at.replace(minute=0, second=0), []).append(samples.Sample(at, good, total))
    return [(hour, len(chunk), *samples.encode(chunk)) for hour, chunk in hours.items()]


def timed(
    work: Callable[[datetime], list[dict[str, Any]]], at: datetime
) -> tuple[list[dict[str, Any]], tuple[float, float]]:
    """The work's result and its (wall, CPU) seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = work(at)
    return result, (time.perf_counter() - wall, time.process_time() - cpu)


def main(count: int, days: int) -> None:
    spec = Spec.model_validate(
        {
            "service": "bench",
            "environments": {"prod": {"targets": ["app:8000"]}},
            "slos": [
                {
                    "name": f"slo-{i:03d}",
                    "objective": (99.0, 99.5, 99.9)[i % 3],
                    "sli": {"kind": "availability"},
                }
                for i in range(count)
            ],
        }
    )

    def evaluate_all(at: datetime) -> list[dict[str, Any]]:
        return [evaluate.state(engine, slo, at) for slo in spec.slos]

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        engine = make_engine(f"sqlite:///{db}")
        upgrade(engine)
        t0 = time.perf_counter()
        patterns = [hourly_rows(seed, days) for seed in range(4)]
        with engine.begin() as conn:
            for i, slo in enumerate(spec.slos):
                conn.execute(
                    insert(samples.slo_samples),
                    [
                        {"slo": slo.name, "target": "app:8000", "at": h, "count": n, "good": g, "total": t}
                        for h, n, g, t in patterns[i % 4]
                    ],
                )
        setup = time.perf_counter() - t0
        with engine.connect() as conn:
            c = samples.slo_samples.c
            blob_bytes = conn.execute(
                select(func.sum(func.length(c.good) + func.length(c.total) + func.length(c.slo) + 40))
            ).scalar_one()
        timings = []
        for _ in range(3):
            states, took = timed(evaluate_all, END)
            timings.append(took)
        assert all(not s["no_data"] for s in states)
        scraped = []
        for n in range(1, 4):
            at = END + timedelta(seconds=n * SCRAPE)
            for slo in spec.slos:  # counts far above the synthesised ones: only the timing matters here
                samples.append(engine, slo.name, "app:8000", samples.Sample(at, 10**9 + n, 10**9 + 2 * n))
            states, took = timed(evaluate_all, at)
            scraped.append(took)
        assert all(s["as_of"] == at.isoformat().replace("+00:00", "Z") for s in states)
        engine.dispose()
        file_bytes = db.stat().st_size
    per_day_row = blob_bytes / count / days
    per_day_file = file_bytes / count / days
    print(f"setup (synthesis + insert): {setup:.1f} s, {count * days * 86400 // SCRAPE:,} samples")
    warm, steady = min(timings[1:]), min(scraped)
    print(f"{'measure (all SLOs)':<46} {'wall':>10} {'cpu':>10}  target")
    print(f"{'compute all SLO states, cold (first run)':<46} {timings[0][0]:>8.3f} s {timings[0][1]:>8.3f} s")
    print(f"{'compute all SLO states, warm (best of 2)':<46} {warm[0]:>8.3f} s {warm[1]:>8.3f} s  < 1 s")
    print(f"{'after one new scrape per SLO (best of 3)':<46} {steady[0]:>8.3f} s {steady[1]:>8.3f} s  < 1 s")
    per_slo = [seconds / count * 1000 for seconds in steady]
    print(f"{'per SLO, steady state':<46} {per_slo[0]:>7.2f} ms {per_slo[1]:>7.2f} ms")
    print(f"{'storage per SLO per day (row payload)':<46} {per_day_row / 1024:>9.1f} KB  < 100 KB")
    print(f"{'storage per SLO per day (whole SQLite file)':<46} {per_day_file / 1024:>9.1f} KB  < 100 KB")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*(args + [100, 30][len(args) :]))
