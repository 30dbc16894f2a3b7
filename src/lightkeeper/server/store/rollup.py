"""Roll raw results and state changes into minute / hour / day / month rows; retention.

Each level is built from the one below (results -> minute and hour; hour -> day;
day -> month), so a level outlives its source: raw results are kept `retention_days`
(default 7), minute rows 2 days, hour rows 35 days (a month of hourly graphs plus slack),
day and month rows forever (one ~200-byte row per probe per day; the SLA report and the
status page look back ≥ 400 days). Month rows exist so that a year of latency
quantiles merges ~12 sketches a probe instead of 365.

The time in states is computed from state changes and maintenance windows for every
level, not summed from below: it is exact for any bucket and state changes are kept.

Re-rolling a bucket replaces its rows in one transaction, so running it twice gives the
same rows. When the source level has already expired for a bucket, its counts and
sketch are kept rather than replaced by zeros; only the times are recomputed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, select

from lightkeeper.server.store import maintenance_windows, merged_cache, sketch
from lightkeeper.server.store.tables import heartbeat_pings, results, rollups, state_changes
from lightkeeper.server.store.uptime import Change, time_in_states

RESOLUTIONS = ("minute", "hour", "day", "month")
_SOURCE = {"minute": None, "hour": None, "day": "hour", "month": "day"}  # None: raw results
_STEP = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
KEEP = {"minute": timedelta(days=2), "hour": timedelta(days=35)}  # day, month: kept
SETTLE = timedelta(seconds=60)  # results checked at a bucket's end may still be queued


def floor(at: datetime, resolution: str) -> datetime:
    at = at.astimezone(UTC)
    if resolution == "minute":
        return at.replace(second=0, microsecond=0)
    if resolution == "hour":
        return at.replace(minute=0, second=0, microsecond=0)
    if resolution == "day":
        return at.replace(hour=0, minute=0, second=0, microsecond=0)
    if resolution == "month":
        return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    raise ValueError(f"unknown resolution {resolution!r}")


def next_bucket(start: datetime, resolution: str) -> datetime:
    if resolution == "month":
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return start + _STEP[resolution]


@dataclass
class _Counts:
    checks: int = 0
    failures: int = 0
    latency_sum_ms: float = 0.0
    sketch: bytes | None = None


def _counts_from_results(conn: Connection, start: datetime, end: datetime) -> dict[str, _Counts]:
    latencies: dict[str, list[float]] = defaultdict(list)
    counts: dict[str, _Counts] = defaultdict(_Counts)
    rows = conn.execute(
        select(results.c.probe, results.c.status, results.c.latency_ms).where(
            results.c.checked_at >= start, results.c.checked_at < end
        )
    )
    for probe, status, latency in rows:
        if status == "no_data":  # the server was offline: no evidence about the target
            continue
        entry = counts[probe]
        entry.checks += 1
        entry.failures += status != "up"
        if latency is not None and status == "up":
            entry.latency_sum_ms += latency
            latencies[probe].append(latency)
    for probe, values in latencies.items():
        built = sketch.build(values)
        counts[probe].sketch = None if built is None else sketch.encode(built)
    return counts


def _counts_from_rollups(conn: Connection, source: str, start: datetime, end: datetime) -> dict[str, _Counts]:
    blobs: dict[str, list[bytes | None]] = defaultdict(list)
    counts: dict[str, _Counts] = defaultdict(_Counts)
    rows = conn.execute(
        select(
            rollups.c.probe, rollups.c.checks, rollups.c.failures, rollups.c.latency_sum_ms, rollups.c.sketch
        ).where(rollups.c.resolution == source, rollups.c.bucket_start >= start, rollups.c.bucket_start < end)
    )
    for probe, checks, failures, latency_sum, blob in rows:
        entry = counts[probe]
        entry.checks += checks
        entry.failures += failures
        entry.latency_sum_ms += latency_sum
        blobs[probe].append(blob)
    for probe, probe_blobs in blobs.items():
        merged = sketch.merge(probe_blobs)
        counts[probe].sketch = None if merged is None else sketch.encode(merged)
    return counts


def history(
    conn: Connection, start: datetime, end: datetime, probes: Iterable[str] | None = None
) -> dict[str, list[Change]]:
    """State changes in [start, end) per probe, each preceded by the last one before `start`."""
    last_before = (
        select(state_changes.c.probe, func.max(state_changes.c.at).label("at"))
        .where(state_changes.c.at <= start)
        .group_by(state_changes.c.probe)
    )
    if probes is not None:
        last_before = last_before.where(state_changes.c.probe.in_(list(probes)))
    last = last_before.subquery()
    opening = select(
        state_changes.c.probe, state_changes.c.at, state_changes.c.state, state_changes.c.id
    ).join(last, and_(state_changes.c.probe == last.c.probe, state_changes.c.at == last.c.at))
    inside = select(
        state_changes.c.probe, state_changes.c.at, state_changes.c.state, state_changes.c.id
    ).where(state_changes.c.at > start, state_changes.c.at < end)
    if probes is not None:
        inside = inside.where(state_changes.c.probe.in_(list(probes)))
    found: dict[str, list[tuple[datetime, int, str]]] = defaultdict(list)
    for query in (opening, inside):
        for probe, at, state, row_id in conn.execute(query):
            found[probe].append((at, row_id, state))
    return {probe: [Change(at, state) for at, _, state in sorted(rows)] for probe, rows in found.items()}


def reroll(conn: Connection, resolution: str, bucket_start: datetime) -> int:
    """Recompute every probe's row for one bucket (idempotent); returns the rows written."""
    start = floor(bucket_start, resolution)
    end = next_bucket(start, resolution)
    source = _SOURCE[resolution]
    counts = (
        _counts_from_results(conn, start, end)
        if source is None
        else _counts_from_rollups(conn, source, start, end)
    )
    changes = history(conn, start, end)
    windows = maintenance_windows.windows(conn, start, end)
    existing = {
        row.probe: row
        for row in conn.execute(
            select(rollups).where(rollups.c.resolution == resolution, rollups.c.bucket_start == start)
        )
    }
    rows: list[dict[str, Any]] = []
    for probe in sorted(set(counts) | set(changes) | set(existing)):
        entry = counts.get(probe)
        if entry is None and probe in existing and existing[probe].checks:
            kept = existing[probe]  # the source expired: keep what was rolled from it
            entry = _Counts(kept.checks, kept.failures, kept.latency_sum_ms, kept.sketch)
        entry = entry or _Counts()
        times = time_in_states(
            changes.get(probe, []), maintenance_windows.for_probe(windows, probe), start, end
        )
        rows.append(
            {
                "probe": probe,
                "resolution": resolution,
                "bucket_start": start,
                "checks": entry.checks,
                "failures": entry.failures,
                "latency_sum_ms": entry.latency_sum_ms,
                "sketch": entry.sketch,
                "up_seconds": times.up,
                "down_seconds": times.down,
                "no_data_seconds": times.no_data,
                "maintenance_seconds": times.maintenance,
            }
        )
    conn.execute(delete(rollups).where(rollups.c.resolution == resolution, rollups.c.bucket_start == start))
    if start + merged_cache.SETTLED <= datetime.now(UTC):  # rewriting settled history
        merged_cache.clear()
    if rows:
        conn.execute(rollups.insert(), rows)
    return len(rows)


def _first_data(conn: Connection) -> datetime | None:
    candidates = [
        conn.execute(select(func.min(results.c.checked_at))).scalar(),
        conn.execute(select(func.min(state_changes.c.at))).scalar(),
    ]
    present = [c for c in candidates if c is not None]
    return min(present) if present else None


def roll_up(engine: Engine, now: datetime, resolutions: Iterable[str] = RESOLUTIONS) -> dict[str, int]:
    """Roll every closed bucket not rolled yet, oldest first, one transaction per bucket.

    A bucket is closed once `SETTLE` has passed after its end. Returns buckets rolled per
    resolution. Safe to run from several replicas: a bucket rolled twice is the same.
    """
    rolled: dict[str, int] = {}
    for resolution in resolutions:
        with engine.connect() as conn:
            last = conn.execute(
                select(func.max(rollups.c.bucket_start)).where(rollups.c.resolution == resolution)
            ).scalar()
            first = _first_data(conn)
        if last is not None:
            start = next_bucket(last, resolution)
        elif first is not None:
            start = floor(first, resolution)
        else:
            continue
        if resolution in KEEP:
            start = max(start, floor(now - KEEP[resolution], resolution))
        count = 0
        while next_bucket(start, resolution) + SETTLE <= now:
            with engine.begin() as conn:
                reroll(conn, resolution, start)
            start = next_bucket(start, resolution)
            count += 1
        rolled[resolution] = count
    return rolled


def apply_retention(
    engine: Engine, now: datetime, *, retention_days: float = 7, batch_size: int = 5000
) -> dict[str, int]:
    """Delete expired rows in bounded batches (short transactions; writers keep going)."""
    cutoff = now - timedelta(days=retention_days)
    deleted = {
        "results": _delete_batches(engine, results, results.c.checked_at < cutoff, batch_size),
        "heartbeat_pings": _delete_batches(
            engine, heartbeat_pings, heartbeat_pings.c.at < cutoff, batch_size
        ),
    }
    for resolution, keep in KEEP.items():
        with engine.begin() as conn:
            deleted[f"rollups_{resolution}"] = conn.execute(
                delete(rollups).where(rollups.c.resolution == resolution, rollups.c.bucket_start < now - keep)
            ).rowcount
    return deleted


def _delete_batches(engine: Engine, table: Any, condition: Any, batch_size: int) -> int:
    total = 0
    while True:
        with engine.begin() as conn:
            ids = select(table.c.id).where(condition).limit(batch_size).scalar_subquery()
            count = conn.execute(delete(table).where(table.c.id.in_(ids))).rowcount
        total += count
        if count < batch_size:
            return total
