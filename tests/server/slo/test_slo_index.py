"""The SLO index gives `slo_math`'s reference numbers, across evaluations and as rows change.

Every number is checked against the reference functions run over the raw samples read
back by `samples.read` (a separate decoding path): `increase()` for short windows and
`grid_counts`/`grid_error_ratio` for the long ones. Scrape times are irregular and off
the grid, with counter resets and gaps, so extrapolation, the 5-minute records that
straddle an hour's end and the reset add-backs are all exercised; the kept summaries
are checked as new scrapes arrive through the real writer (`samples.append`).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, insert

from lightkeeper import slo_math
from lightkeeper.server.slo import evaluate, index, samples
from lightkeeper.server.slo.reading import Reading
from lightkeeper.server.store.db import make_engine, upgrade
from lightkeeper.spec.models import SLO, Spec

T0 = datetime(2026, 12, 1, tzinfo=UTC)  # on the 5-minute grid; the samples mostly are not


def slo_named(name: str, period: str = "1d") -> SLO:
    spec = Spec.model_validate(
        {
            "service": "s",
            "environments": {"prod": {"targets": ["a:1"]}},
            "slos": [{"name": name, "objective": 99.5, "period": period, "sli": {"kind": "availability"}}],
        }
    )
    return spec.slos[0]


def traffic(seed: int, start: datetime, count: int, gap_every: int = 0) -> list[samples.Sample]:
    """Irregular scrapes (3 to 40 s apart, at odd milliseconds), an occasional long gap and restart."""
    rng = random.Random(seed)
    at, good, total, out = start, 0, 0, []
    for n in range(count):
        at += timedelta(milliseconds=rng.randint(3_000, 40_000))
        if gap_every and n % gap_every == gap_every - 1:
            at += timedelta(minutes=rng.randint(6, 200))  # longer than a grid step, even hours
        if rng.random() < 0.01:
            good = total = 0  # a restart
        events = rng.randint(0, 40)
        total += events
        good += events - sum(rng.random() < 0.05 for _ in range(events))
        out.append(samples.Sample(at, good, total))
    return out


def store(engine: Engine, slo: str, target: str, scrapes: Sequence[samples.Sample]) -> None:
    """One row per hour, as `samples.append` leaves them (inserted at once: far faster)."""
    hours: dict[datetime, list[samples.Sample]] = {}
    for s in scrapes:
        hours.setdefault(s.at.replace(minute=0, second=0, microsecond=0), []).append(s)
    rows = [
        {"slo": slo, "target": target, "at": h, "count": len(c), "good": g, "total": t}
        for h, c in hours.items()
        for g, t in [samples.encode(c)]
    ]
    with engine.begin() as conn:
        conn.execute(insert(samples.slo_samples), rows)


def reference(
    engine: Engine, slo: SLO, now: datetime
) -> tuple[float | None, float | None, dict[str, float | None]]:
    """(good, total) over the period and each burn window's error ratio, from the raw samples."""
    period = slo_math.period_seconds(slo.period)
    loaded = evaluate.load(engine, slo, now, period)
    end = loaded.end
    if end is None:
        return None, None, dict.fromkeys(slo_math.BURN_WINDOWS)
    good, total, gridded = _reference_counts(loaded, end, period)
    last_point = end // slo_math.COUNT_STEP_SECONDS * slo_math.COUNT_STEP_SECONDS
    if gridded and end > last_point and good is not None and total is not None:
        # the period is fresh: the raw increase() since the last grid point is added
        tail_good, tail_total, _ = _reference_counts(loaded, end, end - last_point)
        good, total = good + (tail_good or 0.0), total + (tail_total or 0.0)
    ratios: dict[str, float | None] = {}
    for w in slo_math.BURN_WINDOWS:
        seconds = slo_math.duration_seconds(w)
        if _reference_counts(loaded, end, seconds)[2]:
            ratios[w] = slo_math.grid_error_ratio(loaded.total, end, seconds, good=loaded.good)
        else:
            ratios[w] = slo_math.latency_error_ratio(loaded.good, loaded.total, end, seconds)
    return good, total, ratios


def _reference_counts(
    loaded: evaluate.Loaded, end: float, window: float
) -> tuple[float | None, float | None, bool]:
    """(good, total, gridded): grid sums for a long window that has a record, else increase()."""
    if slo_math.uses_count_records(window):
        found = slo_math.grid_counts(loaded.total, end, window, good=loaded.good)
        if found is not None:
            return found[0], found[1], True
    increases = [
        [v for s in series if (v := slo_math.increase(s, end - window, end)) is not None]
        for series in (loaded.good, loaded.total)
    ]
    good, total = (sum(v) if v else None for v in increases)
    return good, total, False


def assert_matches(engine: Engine, slo: SLO, now: datetime) -> Reading:
    reading = evaluate.embedded(engine, slo, now)
    good, total, ratios = reference(engine, slo, now)
    assert reading.total == pytest.approx(total or 0.0, rel=1e-9, abs=1e-9)
    assert reading.good == pytest.approx(good or 0.0, rel=1e-9, abs=1e-9)
    for w, expected in ratios.items():
        got = reading.window_ratios[w]
        assert (got is None) is (expected is None), (w, got, expected)
        if expected is not None:
            assert got == pytest.approx(expected, rel=1e-9, abs=1e-12), w
    return reading


@pytest.fixture(scope="module")
def sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('index') / 'lk.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**32),
    count=st.integers(2, 900),
    gap_every=st.sampled_from([0, 50, 300]),
    targets=st.integers(1, 2),
    windows=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=8),
)
def test_any_range_is_the_reference_increase_and_grid_sum(
    sqlite: Engine, seed: int, count: int, gap_every: int, targets: int, windows: list[tuple[float, float]]
) -> None:
    name = f"p-{uuid.uuid4().hex[:10]}"
    raw = {f"t{i}:1": traffic(seed + i, T0 - timedelta(hours=1), count, gap_every) for i in range(targets)}
    for target, scrapes in raw.items():
        store(sqlite, name, target, scrapes)
    first = min(s[0].at for s in raw.values()).timestamp()
    last = max(s[-1].at for s in raw.values()).timestamp()
    series = index.load(sqlite, name, T0 - timedelta(hours=2), T0 + timedelta(days=30))
    as_pairs = [
        ([(s.at.timestamp(), s.good) for s in c], [(s.at.timestamp(), s.total) for s in c])
        for c in raw.values()
    ]
    for a, b in windows:
        start, end = sorted((first - 60 + a * (last - first + 120), first - 60 + b * (last - first + 120)))
        for which in (index.GOOD, index.TOTAL):
            counters = [pair[which] for pair in as_pairs]
            expected = [v for c in counters if (v := slo_math.increase(c, start, end)) is not None]
            got = index.summed(series, which, start, end)
            assert (got is None) is (not expected)
            if expected:
                assert got == pytest.approx(sum(expected), rel=1e-9, abs=1e-9)
        grid = slo_math.grid_counts([p[1] for p in as_pairs], end, end - start, good=[p[0] for p in as_pairs])
        good_grid = index.grid_summed(series, index.GOOD, start, end)
        total_grid = index.grid_summed(series, index.TOTAL, start, end)
        assert (total_grid is None) is (grid is None)
        if grid is not None:
            assert total_grid == pytest.approx(grid[1], rel=1e-9, abs=1e-9)
            assert good_grid == pytest.approx(grid[0], rel=1e-9, abs=1e-9)


def test_evaluation_follows_new_scrapes_through_the_writer(engine: Engine) -> None:
    """Kept summaries are extended, not trusted: after each append the numbers are the reference's.

    A scrape exactly on an hour's start belongs to that hour's row but also closes the
    previous hour's last grid step, which must then be recomputed.
    """
    slo = slo_named("extend")
    history = traffic(7, T0 - timedelta(hours=3), 600, gap_every=200)
    history = [s for s in history if s.at < T0 - timedelta(seconds=1)]
    store(engine, slo.name, "a:1", history)
    last = history[-1]
    assert_matches(engine, slo, T0)
    later = [
        samples.Sample(T0, last.good + 10, last.total + 12),  # on the hour and the grid
        samples.Sample(T0 + timedelta(seconds=14.5), last.good + 30, last.total + 40),
        samples.Sample(T0 + timedelta(seconds=29), 3, 5),  # a restart
        samples.Sample(T0 + timedelta(seconds=301.25), 50, 60),
        samples.Sample(T0 + timedelta(hours=1, seconds=7), 80, 99),  # a new hour after a gap
    ]
    for scrape in later:
        samples.append(engine, slo.name, "a:1", scrape)
        reading = assert_matches(engine, slo, scrape.at + timedelta(seconds=1))
        assert reading.end == scrape.at.timestamp()
    # an earlier moment: the later samples are left out, and the range reaching further back is read
    assert assert_matches(engine, slo, T0 + timedelta(seconds=20)).end == later[1].at.timestamp()
    assert_matches(engine, slo, T0 - timedelta(hours=2))


def test_a_warm_evaluation_reads_only_recent_rows_and_rebuilds_nothing(engine: Engine) -> None:
    slo = slo_named("warm", period="30d")
    store(engine, slo.name, "a:1", traffic(3, T0 - timedelta(days=2), 4000))
    now = T0 + timedelta(hours=1)
    first = index.load(engine, slo.name, now - timedelta(days=30), now)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    again = index.load(engine, slo.name, now - timedelta(days=30), now)
    assert [id(s) for s in again] == [id(s) for s in first]
    assert len(statements) == 1
    samples.append(engine, slo.name, "a:1", samples.Sample(now, 10**6, 10**6))
    after = index.load(engine, slo.name, now - timedelta(days=30), now)
    assert after[0] is not first[0]
    assert after[0].hours[:-1] == first[0].hours  # earlier summaries reused, one hour added
    assert_matches(engine, slo, now)


def test_a_row_grown_after_its_summary_is_read_as_summarised(sqlite: Engine) -> None:
    """An hour decoded for a range edge after the scraper appended to it agrees with its summary."""
    name = f"grow-{uuid.uuid4().hex[:8]}"
    scrapes = traffic(11, T0, 100)
    hour = [s for s in scrapes if s.at < T0 + timedelta(hours=1)]
    store(sqlite, name, "a:1", hour[:-1])
    series = index.load(sqlite, name, T0, T0 + timedelta(hours=2))
    samples.append(sqlite, name, "a:1", hour[-1])
    start, end = hour[10].at.timestamp() + 0.5, hour[-2].at.timestamp() - 0.5  # both inside the hour
    pairs = [(s.at.timestamp(), s.total) for s in hour[:-1]]
    assert index.summed(series, index.TOTAL, start, end) == pytest.approx(
        slo_math.increase(pairs, start, end)
    )


def test_each_database_keeps_its_own_summaries(tmp_path: Path) -> None:
    """The same SLO name in two stores (two servers in one process, or tests) never mixes."""
    slo = slo_named("same")
    engines = [make_engine(f"sqlite:///{tmp_path / f'{n}.db'}") for n in range(2)]
    try:
        for n, engine in enumerate(engines):
            upgrade(engine)
            store(engine, slo.name, "a:1", traffic(n, T0 - timedelta(hours=6), 1000))
        readings = [assert_matches(e, slo, T0 + timedelta(hours=2)) for e in engines]
        assert readings[0].total != readings[1].total
    finally:
        for engine in engines:
            engine.dispose()


def test_no_rows_one_sample_and_a_range_before_the_data(sqlite: Engine) -> None:
    slo = slo_named(f"empty-{uuid.uuid4().hex[:8]}")
    empty = evaluate.embedded(sqlite, slo, T0)
    assert empty.end is None and empty.period_ratio is None
    assert all(v is None for v in empty.window_ratios.values())
    samples.append(sqlite, slo.name, "a:1", samples.Sample(T0, 5, 5))
    one = evaluate.embedded(sqlite, slo, T0 + timedelta(minutes=1))
    assert one.end == T0.timestamp() and one.period_ratio is None
    series = index.load(sqlite, slo.name, T0 - timedelta(days=1), T0 + timedelta(days=1))
    before = (T0 - timedelta(hours=2)).timestamp()
    assert index.summed(series, index.TOTAL, before, before + 60) is None
    assert index.grid_summed(series, index.TOTAL, before, before + 3600) is None
    assert series[0].newest(before) is None


def test_young_series_reports_raw_increase_until_its_first_grid_record(sqlite: Engine) -> None:
    """Prometheus has no long-window value before the first 5-minute record; the raw samples do."""
    slo = slo_named(f"young-{uuid.uuid4().hex[:8]}")
    for seconds, count in ((10, 0), (40, 100), (70, 200)):
        samples.append(sqlite, slo.name, "a:1", samples.Sample(T0 + timedelta(seconds=seconds), count, count))
    assert assert_matches(sqlite, slo, T0 + timedelta(minutes=2)).period_ratio == 0.0
    series = index.load(sqlite, slo.name, T0 - timedelta(days=1), T0 + timedelta(minutes=2))
    end = (T0 + timedelta(seconds=70)).timestamp()
    assert index.grid_summed(series, index.TOTAL, end - 86400, end) is None
    counted = index.counts(series, end, 86400)
    assert not counted.gridded and counted.total == pytest.approx(200.0)
    samples.append(sqlite, slo.name, "a:1", samples.Sample(T0 + timedelta(seconds=300), 400, 400))
    series = index.load(sqlite, slo.name, T0 - timedelta(days=1), T0 + timedelta(minutes=6))
    counted = index.counts(series, end + 230, 86400)
    assert counted.gridded and counted.total == pytest.approx(400.0)  # [T0, T0 + 5m]: first sample at 10 s


def test_the_period_counts_traffic_since_the_last_grid_point(sqlite: Engine) -> None:
    """A short run that straddles a grid point (the demo's 5 s of traffic at 12:30:00): the
    period's grid record holds only what came before the point; the failures after it are
    still in `/sla/status`, while the 5m and 1d burn windows stay exactly the rules' values."""
    slo = slo_named(f"straddle-{uuid.uuid4().hex[:8]}")
    start = T0 - timedelta(seconds=4)
    for second, (good, total) in enumerate(
        [(0, 0), (10, 10), (20, 20), (30, 30), (40, 40), (45, 50), (50, 60)]
    ):
        samples.append(
            sqlite, slo.name, "a:1", samples.Sample(start + timedelta(seconds=second), good, total)
        )
    now = start + timedelta(seconds=6)
    reading = evaluate.embedded(sqlite, slo, now)
    assert (reading.good, reading.total) == pytest.approx((50.0, 60.0))  # 40 by the grid point, 20 after
    assert reading.period_ratio == pytest.approx(10 / 60)
    series = index.load(sqlite, slo.name, now - timedelta(days=1), now)
    lagging = index.counts(series, now.timestamp(), 86400)  # what Prometheus holds until 12:35
    assert lagging.gridded and (lagging.good, lagging.total) == pytest.approx((40.0, 40.0))
    assert reading.window_ratios["1d"] == 0.0  # the burn windows lag like the rules


def test_stored_deltas_accumulate_to_the_decoded_samples() -> None:
    from itertools import accumulate

    scrapes = traffic(5, T0, 300)
    good_blob, total_blob = samples.encode(scrapes)
    times, good, total = samples.deltas(len(scrapes), good_blob, total_blob)
    decoded = samples.decode(len(scrapes), good_blob, total_blob)
    assert [t / 1000 for t in accumulate(times)] == [s.at.timestamp() for s in decoded]
    assert list(accumulate(good)) == [s.good for s in decoded]
    assert list(accumulate(total)) == [s.total for s in decoded]
