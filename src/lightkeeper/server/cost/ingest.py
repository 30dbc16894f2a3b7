"""Store a batch of cost events and fold the new ones into the daily roll-up, in one transaction.

Idempotent by event id: the insert skips ids already stored (`ON CONFLICT DO NOTHING`
on the UNIQUE `event_id`) and returns only the rows it wrote, and only those are added
to `llm_daily`. A batch retried after a lost response is therefore counted once, and a
roll-up row can never disagree with the events that produced it. The roll-up is an
additive upsert, so two concurrent batches on PostgreSQL add up rather than overwrite.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from lightkeeper.server.cost.schema import CostEventIn
from lightkeeper.server.store.tables import llm_daily, llm_events

TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")
SUMMED = ("calls", "errors", "unpriced", *TOKENS, "cost_usd")
OK = "ok"


def _row(event: CostEventIn) -> dict[str, Any]:
    row = event.model_dump(exclude={"timestamp", "time_to_first_chunk_seconds"})
    row["at"] = event.timestamp
    return row


def _dialect(conn: Connection) -> Any:
    return postgresql if conn.dialect.name == "postgresql" else sqlite


def store_events(engine: Engine, events: Sequence[CostEventIn]) -> int:
    """Insert the events not seen before; returns how many were new."""
    unique = list({e.event_id: e for e in events}.values())
    if not unique:
        return 0
    with engine.begin() as conn:
        statement = (
            _dialect(conn)
            .insert(llm_events)
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(llm_events.c.event_id)
        )
        inserted = set(conn.execute(statement, [_row(e) for e in unique]).scalars().all())
        _roll_up(conn, [e for e in unique if e.event_id in inserted])
    return len(inserted)


def _roll_up(conn: Connection, events: Sequence[CostEventIn]) -> None:
    sums: dict[tuple[str, str, str, str, str], dict[str, Any]] = {}
    for e in events:
        key = (e.timestamp.date().isoformat(), e.provider, e.model, e.operation, e.workspace_id or "")
        acc = sums.setdefault(key, dict.fromkeys(SUMMED, 0))
        acc["calls"] += 1
        acc["errors"] += e.status != OK
        acc["unpriced"] += e.cost_usd is None
        for name in TOKENS:
            acc[name] += getattr(e, name)
        acc["cost_usd"] += e.cost_usd or 0.0
    if not sums:
        return
    rows = [
        dict(zip(("day", "provider", "model", "operation", "workspace_id"), key, strict=True)) | acc
        for key, acc in sorted(sums.items())  # sorted: concurrent upserts lock rows in one order
    ]
    statement = _dialect(conn).insert(llm_daily)
    statement = statement.on_conflict_do_update(
        index_elements=["day", "provider", "model", "operation", "workspace_id"],
        set_={name: llm_daily.c[name] + statement.excluded[name] for name in SUMMED},
    )
    conn.execute(statement, rows)


def apply_retention(engine: Engine, now: datetime, retention_days: int, batch: int = 5000) -> int:
    """Delete raw events older than `retention_days`; the daily roll-up is kept for good."""
    cutoff = now - timedelta(days=retention_days)
    deleted = 0
    while True:
        with engine.begin() as conn:
            ids = select(llm_events.c.id).where(llm_events.c.at < cutoff).limit(batch).scalar_subquery()
            count = conn.execute(delete(llm_events).where(llm_events.c.id.in_(ids))).rowcount or 0
        deleted += count
        if count < batch:
            return deleted
