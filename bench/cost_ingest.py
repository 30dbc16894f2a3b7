"""Ingest throughput of LLM cost events into the SQLite store (issue 13 target: >= 5 000 events/s).

Run: .venv/bin/python bench/cost_ingest.py [events]
Measures the whole server path minus HTTP: validation of the JSON batch (pydantic),
the idempotent insert and the daily roll-up, in batches of 1000 (the API's maximum).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lightkeeper.server.cost.ingest import store_events
from lightkeeper.server.cost.schema import CostBatch
from lightkeeper.server.store.db import make_engine, upgrade


def batches(total: int, size: int = 1000) -> list[bytes]:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    out = []
    for first in range(0, total, size):
        events = [
            {
                "event_id": f"bench{n:012d}",
                "timestamp": (start + timedelta(seconds=n * 7)).isoformat(),
                "provider": "openai",
                "model": ("gpt-4o", "gpt-4o-mini")[n % 2],
                "operation": ("summarise", "classify", "chat")[n % 3],
                "status": "ok",
                "input_tokens": 1200,
                "output_tokens": 150,
                "cache_read_tokens": 0,
                "cache_write_tokens": 0,
                "reasoning_tokens": 0,
                "cost_usd": 0.0045,
                "price_source": "genai-prices",
                "latency_seconds": 0.8,
                "user_hash": f"{n % 500:032x}",
                "workspace_id": f"ws{n % 20}",
                "request_id": f"r{n}",
            }
            for n in range(first, min(first + size, total))
        ]
        out.append(json.dumps({"events": events}).encode())
    return out


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    bodies = batches(total)
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
        upgrade(engine)
        started = time.perf_counter()
        stored = sum(store_events(engine, CostBatch.model_validate_json(body).events) for body in bodies)
        elapsed = time.perf_counter() - started
        again = time.perf_counter()
        duplicates = sum(
            store_events(engine, CostBatch.model_validate_json(body).events) for body in bodies[:5]
        )
        retry = time.perf_counter() - again
    print(f"stored {stored} events in {elapsed:.2f} s: {stored / elapsed:,.0f} events/s (target 5,000)")
    print(f"retried 5 batches: {duplicates} stored again, {5000 / retry:,.0f} events/s")


if __name__ == "__main__":
    main()
