"""Counter increases over stored samples from hour summaries kept between evaluations.

`/sla/status` needs, per SLO, the period's budget and seven burn windows; `slo_math`
over raw samples would scan 172,800 samples per SLO and window for 30 days at 15 s.
Two kinds of window are asked for, both answered from one `Summary` per stored hour:

- Short windows are `increase()` over raw samples, which only needs the range's first
  and last samples, how many lie between, and the add-backs of counter resets. The
  summary has those for the hour as a whole, so a range's middle hours cost a list
  lookup, and only an hour a range starts or ends *inside* is decoded sample by sample
  (a few per SLO, kept while used).
- Long windows are `slo_math.grid_increase`: the sum of `increase()` over the 5-minute
  grid steps in the window, as the generated rules add up their count records. The
  summary holds its hour's twelve step increases, so a window is a difference of
  running sums plus the steps of its two edge hours.

Both go through `slo_math.extrapolate`, so the numbers are the reference functions'
(up to float summation order). Summaries live per database and SLO across evaluations;
each evaluation reads only rows that can have changed since: rows newer than any seen
(higher id) and the newest hour or two, the only ones the scraper appends to
(`samples.append` adds each scrape at the end of its hour's row). A warm evaluation
thus reads one or two rows instead of 720 and extends its running sums by as many.
"""

from __future__ import annotations

import threading
import weakref
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate, pairwise

from sqlalchemy import Engine, bindparam, or_, select

from lightkeeper import slo_math
from lightkeeper.server.slo import samples

GOOD, TOTAL = 0, 1
STEP = slo_math.COUNT_STEP_SECONDS
_HOUR = int(samples.CHUNK.total_seconds())
_STEPS = _HOUR // STEP  # grid points per hour: an hour's points never need another hour's samples,
assert _STEPS * STEP == _HOUR  # except the one exactly on the next hour's start (see `_closing`)
_FULL_MAX = 32  # decoded hours kept per SLO: a range edge each for the period and 7 windows, and spares
_NONE = float("nan")  # a grid point without a record (fewer than two samples in its step)

Pair = tuple[float, float]
"""(good, total)"""

# A summary is one flat array of doubles, about 400 bytes an hour: 100 SLOs over 30 days
# keep some 50 MB with their `Series`, where an object per number took three times that.
# Its parts:
# a span of samples as `increase()` sees it from outside: sample count, first and last
# time, first and last value (good, total) and the add-backs of the drops after the first;
_COUNT, _FIRST_T, _LAST_T, _FIRST, _LAST, _ADDED = 0, 1, 2, 3, 5, 7
_SPAN = 9
# the hour's span, then its last grid step's (see `_closing`), then the grid records
# of its other points (good's, then total's; NaN without one), their valued sums and count.
_TAIL = _SPAN
_RECORDS = 2 * _SPAN
_SUMS = _RECORDS + 2 * (_STEPS - 1)
_VALUED = _SUMS + 2


class Summary:
    """One stored row (one target's hour) as the windows see it from outside the hour.

    `added` is the sum of the values just before each drop inside the hour: what a
    counter reset hides from last - first. `record(which, j)` is the grid record at
    point at + (j + 1) x STEP; the one at the next hour's start is `_closing`'s.
    """

    __slots__ = ("at", "count", "data", "row")

    def __init__(self, row: int, at: datetime, data: array[float]) -> None:
        self.row = row
        self.at = at
        self.data = data
        self.count = int(data[_COUNT])

    @property
    def first_t(self) -> float:
        return self.data[_FIRST_T]

    @property
    def last_t(self) -> float:
        return self.data[_LAST_T]

    def first(self, which: int) -> float:
        return self.data[_FIRST + which]

    def last(self, which: int) -> float:
        return self.data[_LAST + which]

    def added(self, which: int) -> float:
        return self.data[_ADDED + which]

    def record(self, which: int, j: int) -> float:
        return self.data[_RECORDS + which * (_STEPS - 1) + j]

    def records_sum(self, which: int) -> float:
        return self.data[_SUMS + which]

    @property
    def records_valued(self) -> int:
        return int(self.data[_VALUED])


def _resets(deltas: array[int], values: list[int]) -> list[float] | None:
    """resets[k]: add-backs for the drops at samples 1..k; None without a drop (most hours: checked in C)."""
    if min(deltas) >= 0:
        return None
    return list(accumulate((float(a) if b < a else 0.0 for a, b in pairwise(values)), initial=0.0))


def summarise(row: int, at: datetime, count: int, good_blob: bytes, total_blob: bytes) -> Summary:
    """Reduce one stored row; the per-sample work is C (`accumulate`) but for the 12 grid steps."""
    packed = samples.deltas(count, good_blob, total_blob)
    times = list(accumulate(packed[0]))
    values = (list(accumulate(packed[1])), list(accumulate(packed[2])))
    resets = (_resets(packed[1], values[GOOD]), _resets(packed[2], values[TOTAL]))
    data = array("d")
    _span(data, times, values, resets, 0, count - 1)
    start_ms = round(at.timestamp() * 1000)
    step_ms = STEP * 1000
    edges = []  # per grid point but the last: (first, last) sample index in [point - step, point], point
    lo = 0
    for p_ms in range(start_ms + step_ms, start_ms + _HOUR * 1000, step_ms):
        lo = bisect_left(times, p_ms - step_ms, lo)
        edges.append((lo, bisect_right(times, p_ms, lo) - 1, p_ms / 1000))
    lo = bisect_left(times, start_ms + _HOUR * 1000 - step_ms, lo)
    _span(data, times, values, resets, lo, count - 1)
    good = _records(times, values[GOOD], resets[GOOD], edges)
    total = _records(times, values[TOTAL], resets[TOTAL], edges)
    valued = [r for r in total if r == r]
    data.extend(good)
    data.extend(total)
    data.extend((sum(r for r in good if r == r), sum(valued), len(valued)))
    return Summary(row, at, data)


def _span(
    out: array[float],
    times: list[int],
    values: tuple[list[int], list[int]],
    resets: tuple[list[float] | None, list[float] | None],
    lo: int,
    hi: int,
) -> None:
    """Append the span of samples lo..hi (none when lo > hi: a count of 0)."""
    if lo > hi:
        out.extend([0.0] * _SPAN)
        return
    out.extend((hi - lo + 1, times[lo] / 1000, times[hi] / 1000))
    out.extend((values[GOOD][lo], values[TOTAL][lo], values[GOOD][hi], values[TOTAL][hi]))
    out.extend(0.0 if r is None else r[hi] - r[lo] for r in resets)


def _records(
    times: list[int], values: list[int], resets: list[float] | None, edges: list[tuple[int, int, float]]
) -> list[float]:
    """`increase()` over [point - step, point] per (first, last, point) of `edges`; NaN under two samples."""
    return [
        slo_math.extrapolate(
            values[hi] - values[lo] + (0.0 if resets is None else resets[hi] - resets[lo]),
            (times[lo] / 1000, float(values[lo])),
            times[hi] / 1000,
            hi - lo + 1,
            point - STEP,
            point,
        )
        if hi > lo
        else _NONE
        for lo, hi, point in edges
    ]


def _closing(hour: Summary, following: Summary | None) -> Pair:
    """The record at the hour's last grid point (the next hour's start), NaN without one.

    Its range also takes a sample lying exactly on that point, stored in the next
    hour's row: known only once that row is.
    """
    tail = hour.data[_TAIL : _TAIL + _SPAN]
    count = int(tail[_COUNT])
    if count == 0:
        return _NONE, _NONE
    point = hour.at.timestamp() + _HOUR
    last_t = tail[_LAST_T]
    last = [tail[_LAST + GOOD], tail[_LAST + TOTAL]]
    added = [tail[_ADDED + GOOD], tail[_ADDED + TOTAL]]
    if following is not None and following.first_t == point:
        count += 1
        last_t = point
        for which in (GOOD, TOTAL):
            if following.first(which) < last[which]:
                added[which] += last[which]
            last[which] = following.first(which)
    if count < 2:
        return _NONE, _NONE
    first_t = tail[_FIRST_T]
    good, total = (
        slo_math.extrapolate(
            last[which] - tail[_FIRST + which] + added[which],
            (first_t, tail[_FIRST + which]),
            last_t,
            count,
            point - STEP,
            point,
        )
        for which in (GOOD, TOTAL)
    )
    return good, total


class Hour:
    """One stored hour sample by sample: times, values and running add-backs, for ranges edged inside it."""

    __slots__ = ("resets", "times", "values")

    def __init__(self, count: int, good_blob: bytes, total_blob: bytes) -> None:
        times, good, total = samples.deltas(count, good_blob, total_blob)
        # the row may have grown since its summary was taken: keep the samples the summary counted
        self.times = array("d", (t / 1000 for t in accumulate(times[:count])))
        self.values = tuple(array("d", accumulate(v[:count])) for v in (good, total))
        self.resets = tuple(_running_resets(v) for v in self.values)


def _running_resets(values: array[float]) -> array[float]:
    """resets[k]: add-backs for the drops at samples 1..k of the hour."""
    return array("d", accumulate((a if b < a else 0.0 for a, b in pairwise(values)), initial=0.0))


class Series:
    """One target's hours in time order, with running sums across hours.

    Built from a previous version of itself when only later hours changed (the usual
    case: the scraper extends the newest hour), reusing its lists up to `keep`.
    """

    def __init__(
        self,
        hours: Sequence[Summary],
        full: Callable[[Summary], Hour],
        previous: Series | None = None,
        keep: int = 0,
    ) -> None:
        self.hours = list(hours)
        self._full = full
        n = max(0, min(keep, len(self.hours) - 1)) if previous is not None else 0
        p = previous
        # numbers in arrays, not lists: a float object per number would double the memory
        self.ats: list[datetime] = p.ats[:n] if p else []
        self.points: array[int] = p.points[:n] if p else array("q")  # grid index of each hour's start
        self.firsts: array[float] = p.firsts[:n] if p else array("d")
        self.lasts: array[float] = p.lasts[:n] if p else array("d")
        self.offsets: array[int] = p.offsets[: n + 1] if p else array("q", [0])
        self.before: tuple[array[float], array[float]] = (
            (p.before[0][:n], p.before[1][:n]) if p else (array("d"), array("d"))
        )
        self.closing: tuple[array[float], array[float]] = (
            (p.closing[0][:n], p.closing[1][:n]) if p else (array("d"), array("d"))
        )
        self.step_sums: tuple[array[float], array[float]] = (
            (p.step_sums[0][: n + 1], p.step_sums[1][: n + 1])
            if p
            else (array("d", [0.0]), array("d", [0.0]))
        )
        self.step_counts: array[int] = p.step_counts[: n + 1] if p else array("q", [0])
        for i in range(n, len(self.hours)):
            self._extend(i)

    def _extend(self, i: int) -> None:
        h = self.hours[i]
        start = h.at.timestamp()
        self.ats.append(h.at)
        self.points.append(int(start // STEP))
        self.firsts.append(h.first_t)
        self.lasts.append(h.last_t)
        self.offsets.append(self.offsets[-1] + h.count)
        for which in (GOOD, TOTAL):
            # add-backs of every drop up to and including the one at this hour's first sample
            running, previous = 0.0, 0.0
            if i:
                running = self.before[which][i - 1] + self.hours[i - 1].added(which)
                previous = self.hours[i - 1].last(which)
            if h.first(which) < previous:
                running += previous
            self.before[which].append(running)
        following = self.hours[i + 1] if i + 1 < len(self.hours) else None
        closing = _closing(h, following)
        valued = closing[TOTAL] == closing[TOTAL]
        for which in (GOOD, TOTAL):
            self.closing[which].append(closing[which])
            extra = closing[which] if valued else 0.0
            self.step_sums[which].append(self.step_sums[which][-1] + h.records_sum(which) + extra)
        self.step_counts.append(self.step_counts[-1] + h.records_valued + valued)

    def changed_from(self, at: datetime) -> int:
        """Index from which lists must be rebuilt when the hour `at` changes (the hour before
        it too: its last grid record may take the changed hour's first sample)."""
        return max(0, bisect_left(self.ats, at) - 1)

    def _first_from(self, h: int, start: float, which: int) -> tuple[int, float, float, float]:
        """(index, time, value, add-backs so far) of hour h's first sample at or after `start`."""
        s = self.hours[h]
        if start <= s.first_t:
            return 0, s.first_t, s.first(which), 0.0
        full = self._full(s)
        k = bisect_left(full.times, start)
        return k, full.times[k], full.values[which][k], full.resets[which][k]

    def _last_until(self, h: int, end: float, which: int) -> tuple[int, float, float, float]:
        """(index, time, value, add-backs so far) of hour h's last sample at or before `end`."""
        s = self.hours[h]
        if end >= s.last_t:
            return s.count - 1, s.last_t, s.last(which), s.added(which)
        full = self._full(s)
        k = bisect_right(full.times, end) - 1
        return k, full.times[k], full.values[which][k], full.resets[which][k]

    def newest(self, end: float) -> float | None:
        """Time of the last sample at or before `end`."""
        h = bisect_right(self.firsts, end) - 1
        return None if h < 0 else self._last_until(h, end, TOTAL)[1]

    def increase(self, which: int, start: float, end: float) -> float | None:
        """`slo_math.increase` of the good (0) or total (1) counter over [start, end]."""
        h0 = bisect_left(self.lasts, start)
        h1 = bisect_right(self.firsts, end) - 1
        if h0 >= len(self.hours) or h1 < 0 or h0 > h1:
            return None
        k0, t0, v0, r0 = self._first_from(h0, start, which)
        k1, t1, v1, r1 = self._last_until(h1, end, which)
        count = self.offsets[h1] + k1 - (self.offsets[h0] + k0) + 1
        if count < 2:
            return None
        added = (self.before[which][h1] + r1) - (self.before[which][h0] + r0)
        return slo_math.extrapolate(v1 - v0 + added, (t0, v0), t1, count, start, end)

    def grid(self, which: int, start: float, end: float) -> tuple[float, int]:
        """(sum, number) of the grid records at points in (start, end]: `grid_increase`'s terms."""
        k_lo, k_hi = int(start // STEP) + 1, int(end // STEP)
        first = bisect_left(self.points, k_lo - _STEPS)  # first hour whose points reach k_lo
        last = bisect_right(self.points, k_hi - 1) - 1  # last hour whose points start by k_hi
        if k_hi < k_lo or first > last:
            return 0.0, 0
        total, count = self._partial(first, which, k_lo, k_hi)
        if last > first:
            total += self.step_sums[which][last] - self.step_sums[which][first + 1]
            count += self.step_counts[last] - self.step_counts[first + 1]
            more, extra = self._partial(last, which, k_lo, k_hi)
            total, count = total + more, count + extra
        return total, count

    def _partial(self, i: int, which: int, k_lo: int, k_hi: int) -> tuple[float, int]:
        """The records of hour i at points in [k_lo, k_hi]."""
        base = self.points[i]
        total, count = 0.0, 0
        hour = self.hours[i]
        for j in range(max(1, k_lo - base), min(_STEPS, k_hi - base) + 1):
            record = hour.record(which, j - 1) if j < _STEPS else self.closing[which][i]
            if record == record:  # not NaN
                total += record
                count += 1
        return total, count


_c = samples.slo_samples.c
# Rows of one SLO in [since, until] that can have changed since the last read: new ones
# (ids only grow) and the recent hours the scraper still appends to.
_CHANGED = select(_c.id, _c.target, _c.at, _c.count.label("n"), _c.good, _c.total).where(
    _c.slo == bindparam("slo"),
    _c.at >= bindparam("since"),
    _c.at <= bindparam("until"),
    or_(_c.id > bindparam("after_row"), _c.at >= bindparam("recent")),
)

_ROW = select(_c.good, _c.total).where(_c.id == bindparam("row"))


class _Store:
    """One SLO's summaries from one database, refreshed from the rows that can have changed."""

    def __init__(self, slo: str) -> None:
        self.slo = slo
        self.lock = threading.Lock()
        self.since: datetime | None = None  # earliest hour loaded; earlier ones are not known
        self.newest: datetime | None = None
        self.max_row = 0
        self.targets: dict[str, Series] = {}
        self.full: dict[tuple[int, int], Hour] = {}

    def series(self, engine: Engine, first_hour: datetime, end: datetime) -> list[Series]:
        with self.lock:
            self._refresh(engine, first_hour, end)
            return list(self.targets.values())

    def _refresh(self, engine: Engine, first_hour: datetime, end: datetime) -> None:
        known = self.since is not None and first_hour >= self.since
        base = self.targets if known else {}
        recent = self.newest - samples.CHUNK if known and self.newest is not None else first_hour
        params = {
            "slo": self.slo,
            "since": first_hour,
            "until": end,
            "after_row": self.max_row if known else -1,
            "recent": max(recent, first_hour),
        }
        changed: dict[str, list[Summary]] = {}
        max_row, newest = self.max_row, self.newest
        with engine.connect() as conn:
            for row in conn.execute(_CHANGED, params):
                if row.n < 1:
                    continue
                current = base.get(row.target)
                if current is not None:
                    i = bisect_left(current.ats, row.at)
                    if i < len(current.ats) and current.ats[i] == row.at:
                        old = current.hours[i]
                        if (old.row, old.count) == (row.id, row.n):
                            continue
                changed.setdefault(row.target, []).append(
                    summarise(row.id, row.at, row.n, row.good, row.total)
                )
                max_row = max(max_row, row.id)
                newest = row.at if newest is None else max(newest, row.at)
        # only now that every changed row is summarised: a failed read must leave nothing half-known
        self.max_row, self.newest = max_row, newest
        if not known:
            self.targets, self.since = {}, first_hour
        full = _Full(self, engine)
        for target, summaries in changed.items():
            self.targets[target] = _merged(self.targets.get(target), summaries, full)
        if known and self.since is not None and first_hour - self.since > _PRUNE_AFTER:
            self._prune(first_hour, full)

    def _prune(self, first_hour: datetime, full: _Full) -> None:
        """Drop hours that left every window (ranges never reach them: bisection skips them)."""
        for target, series in list(self.targets.items()):
            keep = series.hours[bisect_left(series.ats, first_hour) :]
            if keep:
                self.targets[target] = Series(keep, full)
            else:
                del self.targets[target]
        self.since = first_hour


_PRUNE_AFTER = samples.CHUNK * 24


def _merged(current: Series | None, summaries: list[Summary], full: _Full) -> Series:
    """`current` with the given hours replaced or added, rebuilt only from the first changed one."""
    if current is None:
        return Series(sorted(summaries, key=lambda s: s.at), full)
    hours = list(current.hours)
    ats = list(current.ats)
    keep = len(hours)
    for s in sorted(summaries, key=lambda s: s.at):
        i = bisect_left(ats, s.at)
        if i < len(ats) and ats[i] == s.at:
            hours[i] = s
        else:
            hours.insert(i, s)
            ats.insert(i, s.at)
        keep = min(keep, current.changed_from(s.at))
    return Series(hours, full, current, keep)


class _Full:
    """Decodes (and keeps a few of) the hours a range edge falls inside."""

    def __init__(self, store: _Store, engine: Engine) -> None:
        self.store = store
        self.engine = engine

    def __call__(self, summary: Summary) -> Hour:
        store = self.store
        key = (summary.row, summary.count)
        with store.lock:
            hour = store.full.get(key)
            if hour is not None:
                return hour
            with self.engine.connect() as conn:
                row = conn.execute(_ROW, {"row": summary.row}).one()
            hour = Hour(summary.count, row.good, row.total)
            if len(store.full) >= _FULL_MAX:
                del store.full[next(iter(store.full))]
            store.full[key] = hour
            return hour


_STORES: weakref.WeakKeyDictionary[Engine, dict[str, _Store]] = weakref.WeakKeyDictionary()
_STORES_LOCK = threading.Lock()


def load(engine: Engine, slo: str, start: datetime, end: datetime) -> list[Series]:
    """Per target, the stored hours from `start`'s hour to `end` (and any later ones already known:
    every query bisects by time, so hours outside a range cost nothing)."""
    with _STORES_LOCK:
        stores = _STORES.setdefault(engine, {})
        store = stores.get(slo) or stores.setdefault(slo, _Store(slo))
    return store.series(engine, _hour(start), end)


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def summed(series: list[Series], which: int, start: float, end: float) -> float | None:
    """Sum over targets; a target without a value drops out; none at all -> None."""
    found = [v for s in series if (v := s.increase(which, start, end)) is not None]
    return sum(found) if found else None


def grid_summed(series: list[Series], which: int, start: float, end: float) -> float | None:
    """`slo_math.grid_counts` over all targets: every record in (start, end]; none at all -> None."""
    total, count = 0.0, 0
    for s in series:
        part, n = s.grid(which, start, end)
        total += part
        count += n
    return total if count else None


@dataclass(frozen=True, slots=True)
class Counts:
    """Good and total events over a window; `gridded` when they are the sums of grid records."""

    good: float | None
    total: float | None
    gridded: bool

    def error_ratio(self, window: float) -> float | None:
        """The window's `slo:sli_error:ratio_rate<w>`, in the float operations of its reference
        (`slo_math.grid_error_ratio` or `slo_math.latency_error_ratio`); None without traffic."""
        good, total = self.good, self.total
        if total is None or good is None or total == 0:
            return None
        if self.gridded:
            return (total - good) / total
        return (total / window - good / window) / (total / window)


def counts(series: list[Series], end: float, window: float, *, fresh: bool = False) -> Counts:
    """Events over the window ending at `end`, counted as the generated rules do: from the
    5-minute grid records for long windows (`slo_math.uses_count_records`), else
    `increase()` over the raw samples.

    One deliberate difference: while no grid record falls in a long window (a series
    younger than its first grid step), Prometheus has no value, but the raw samples do;
    they are reported rather than no data, so a fresh install shows its first minutes.

    `fresh` (the period's SLI and budget, which `/sla/status`, the demo and the history
    show) adds the raw `increase()` since the last grid point to the grid records: the
    value Prometheus will have at the next grid step, now. At a grid point it is exactly
    the rules' value; the burn-rate windows stay unfreshened, so alerts match the rules.
    """
    start = end - window
    if slo_math.uses_count_records(window):
        total = grid_summed(series, TOTAL, start, end)
        if total is not None:
            good = grid_summed(series, GOOD, start, end)
            last_point = (end // STEP) * STEP
            if fresh and end > last_point and good is not None:
                good += summed(series, GOOD, last_point, end) or 0.0
                total += summed(series, TOTAL, last_point, end) or 0.0
            return Counts(good, total, True)
    return Counts(summed(series, GOOD, start, end), summed(series, TOTAL, start, end), False)
