"""Stored SLO counter samples: one row per SLO, target and UTC hour, the samples packed inside.

A row per scrape would cost about 150 bytes per sample on SQLite (far more on
PostgreSQL): 5,760 samples a day at 15 s is close to 1 MB per SLO. Packed as deltas
(milliseconds since the previous sample, change of each counter) and zlib-compressed,
an hour of samples takes well under a kilobyte, so a day stays far below 100 KB. The
counters are event counts, hence integers; a counter reset is a negative delta, kept
as such, so reading gives back exactly what was scraped.
"""

from __future__ import annotations

import zlib
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate, pairwise

from sqlalchemy import Column, Connection, Engine, Index, Integer, LargeBinary, String, Table, select, update
from sqlalchemy import insert as sa_insert

from lightkeeper.server.store.tables import NAME, metadata
from lightkeeper.server.store.types import UTCDateTime

CHUNK = timedelta(hours=1)

slo_samples = Table(
    "slo_samples",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("slo", String(NAME), nullable=False),
    Column("target", String(NAME), nullable=False),
    Column("at", UTCDateTime, nullable=False),  # start of the UTC hour the samples fall in
    Column("count", Integer, nullable=False),
    Column("good", LargeBinary, nullable=False),  # packed: time deltas, good deltas, total deltas
    Column("total", LargeBinary, nullable=False),
    Index("ix_slo_samples_slo_at", "slo", "at", "target", unique=True),
)


@dataclass(frozen=True, slots=True)
class Sample:
    at: datetime
    good: float
    total: float


def _hour(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _pack(values: Sequence[int]) -> bytes:
    deltas = array("q", [values[0], *(b - a for a, b in pairwise(values))])
    return zlib.compress(deltas.tobytes(), 6)


def _unpack(blob: bytes) -> list[int]:
    deltas = array("q")
    deltas.frombytes(zlib.decompress(blob))
    return list(accumulate(deltas))


def encode(samples: Sequence[Sample]) -> tuple[bytes, bytes]:
    """(good blob, total blob); the good blob carries the times too: times then good counts."""
    times = [_ms(s.at) for s in samples]
    good = _pack([*times, *(round(s.good) for s in samples)])
    return good, _pack([round(s.total) for s in samples])


def deltas(count: int, good_blob: bytes, total_blob: bytes) -> tuple[array[int], array[int], array[int]]:
    """(times in ms, good, total) of one row, each as its first value then deltas.

    For readers that summarise an hour without a Python object per sample: sums,
    minima and `accumulate` over these run in C. The good counts are packed after the
    times, so their first delta is made absolute here.
    """
    packed = array("q")
    packed.frombytes(zlib.decompress(good_blob))
    times, good = packed[:count], packed[count:]
    if count and good:
        good[0] += sum(times)
    total = array("q")
    total.frombytes(zlib.decompress(total_blob))
    return times, good, total


def decode(count: int, good_blob: bytes, total_blob: bytes) -> list[Sample]:
    packed = _unpack(good_blob)
    times = packed[:count]
    good = packed[count:]
    total = _unpack(total_blob)
    return [
        Sample(datetime.fromtimestamp(t / 1000, UTC), float(g), float(n))
        for t, g, n in zip(times, good, total, strict=True)
    ]


def append(engine: Engine, slo: str, target: str, sample: Sample) -> None:
    """Add one scrape's counts to its hour's row (created on the hour's first scrape)."""
    hour = _hour(sample.at)
    c = slo_samples.c
    with engine.begin() as conn:
        row = conn.execute(
            select(c.id, c.count.label("n"), c.good, c.total).where(
                c.slo == slo, c.target == target, c.at == hour
            )
        ).one_or_none()
        if row is None:
            good, total = encode([sample])
            conn.execute(
                sa_insert(slo_samples).values(
                    slo=slo, target=target, at=hour, count=1, good=good, total=total
                )
            )
            return
        existing = decode(row.n, row.good, row.total)
        if existing and sample.at <= existing[-1].at:
            return  # a duplicate or out-of-order scrape: the stored series stays monotonic in time
        good, total = encode([*existing, sample])
        conn.execute(
            update(slo_samples).where(c.id == row.id).values(count=row.n + 1, good=good, total=total)
        )


def read(conn: Connection | Engine, slo: str, start: datetime, end: datetime) -> dict[str, list[Sample]]:
    """Per target, the samples with start <= at <= end, oldest first."""
    c = slo_samples.c
    query = (
        select(c.target, c.count.label("n"), c.good, c.total)
        .where(c.slo == slo, c.at >= _hour(start), c.at <= end)
        .order_by(c.target, c.at)
    )
    if isinstance(conn, Engine):
        with conn.connect() as connection:
            rows = connection.execute(query).all()
    else:
        rows = conn.execute(query).all()
    out: dict[str, list[Sample]] = {}
    for row in rows:
        out.setdefault(row.target, []).extend(decode(row.n, row.good, row.total))
    for target, series in out.items():
        times = [s.at for s in series]
        out[target] = series[bisect_left(times, start) :]
        out[target] = [s for s in out[target] if s.at <= end]
    return out


def write_many(engine: Engine, rows: Iterable[tuple[str, str, Sample]]) -> None:
    for slo, target, sample in rows:
        append(engine, slo, target, sample)
