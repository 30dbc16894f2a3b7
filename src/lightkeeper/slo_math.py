"""The one SLO math: SLIs, error budgets, burn rates and burn-rate alert states.

Both the rule generator (`lightkeeper.stack.slo`) and the server import this module,
so a budget on `/sla/status` and the `slo:error_budget:remaining_ratio` rule cannot
drift apart; `tests/integration/test_slo_equivalence.py` runs both through promtool.
It is pure stdlib, so it may sit below the spec in the import layers.

Definitions (window = any range; period = the SLO's budget period):

- error ratio = bad events ÷ total events over the window (never an average of
  ratios); SLI = 1 - error ratio. No events in the window → `no_data`, never NaN.
- error budget (ratio) = 1 - objective; in minutes = (1 - objective) x window
  length: 99.9 % of 30 days is 43.2 min, 99.5 % of 30 days is 216 min.
- consumed = error ratio ÷ budget; remaining = 1 - consumed (negative once overspent,
  like the generated rule).
- burn rate = error ratio ÷ budget (1 spends the budget exactly over the period).
- time to exhaustion = remaining share x period ÷ burn rate; None when not burning.
- burn-rate factor of a tier = budget share x period ÷ long window (30d: 0.02 x 720 h
  ÷ 1 h = 14.4), rounded to 4 places; alert threshold = factor x budget.

Counters follow Prometheus 2.x `increase()` (the version the generated rules are
tested with): samples in the closed range [t - w, t]; fewer than two samples → no
value; a drop means the counter restarted from 0, so the value before the drop is
added back; the sampled delta is then extrapolated towards the range edges — fully
if the gap to an edge is under 1.1 x the mean sample interval, else by half an
interval — and never past the point where the counter would have been 0. A scrape
gap therefore just widens the interval between two samples: no traffic is invented.

Long windows (a day and more: the period and the 1d/3d ticket tiers) are not read from
the raw counters, which would scan every raw sample of every series at each evaluation.
The rules record each SLO's good and total events per `COUNT_STEP_SECONDS` (5 min) and
add those records up on a fixed grid; `grid_increase` and `grid_error_ratio` are the
exact reference (their docstrings state the contract).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

Sample = tuple[float, float]
"""(unix time in seconds, counter value)."""

DAY_SECONDS = 86400
CALENDAR_MONTH = "calendar_month"
CALENDAR_MONTH_SECONDS = 30 * DAY_SECONDS
_FACTOR_QUANTUM = Decimal("0.0001")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}

# The burn-rate windows `/sla/status` reports, shortest first.
BURN_WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")

# The generated rules record each window's error ratio as `<prefix><window>` (e.g.
# `slo:sli_error:ratio_rate5m`, labels service, environment, slo); the server's
# Prometheus mode reads them back by this name.
ERROR_RATIO_RECORD_PREFIX = "slo:sli_error:ratio_rate"

# Short-window event counts the long windows are built from: `<prefix><step>` (e.g.
# `slo:sli_total:increase5m`, labels service, environment, slo). Written at every
# evaluation of the SLO's group, so consecutive records overlap: add them up only on
# the grid of `grid_increase` (a `[w:5m]` subquery), never with `sum_over_time(...[w])`.
GOOD_COUNT_RECORD_PREFIX = "slo:sli_good:increase"
TOTAL_COUNT_RECORD_PREFIX = "slo:sli_total:increase"
COUNT_STEP_SECONDS = 300
# Windows from this length up are built from the count records; shorter ones (the page
# tiers and every short window) read the raw counters, so they stay fresh to the scrape.
LONG_WINDOW_MIN_SECONDS = DAY_SECONDS


def to_decimal(value: float | int | str | Decimal) -> Decimal:
    """The decimal a person meant: floats via their shortest repr, so 99.9 stays 99.9."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def duration_seconds(text: str) -> int:
    """Whole seconds in a Prometheus duration (`5m`, `1h30m`, `30d`); ValueError otherwise."""
    total, digits = 0, ""
    for ch in text:
        if ch.isdigit():
            digits += ch
        elif ch in _UNITS and digits:
            total += int(digits) * _UNITS[ch]
            digits = ""
        else:
            digits = "x"
            break
    if digits or not text:
        raise ValueError(f"{text!r} is not a duration; write e.g. 30s, 5m, 1h, 30d")
    return total


def period_seconds(period: str) -> int:
    """Length of an SLO period; `calendar_month` counts as 30 days, as the rules do."""
    return CALENDAR_MONTH_SECONDS if period == CALENDAR_MONTH else duration_seconds(period)


# --- budgets ----------------------------------------------------------------------------


def error_budget(objective_percent: float | str | Decimal) -> Decimal:
    """Allowed bad share, exactly: 99.9 -> 0.001 (float 99.9 must not become 0.00099999...)."""
    return (Decimal(100) - to_decimal(objective_percent)) / Decimal(100)


def budget_minutes(objective_percent: float | str | Decimal, window_seconds: float) -> float:
    """(1 - objective) x window: 99.5 % of 30 days -> 216.0, 99.9 % -> 43.2."""
    return float(error_budget(objective_percent) * to_decimal(window_seconds) / Decimal(60))


def error_ratio(bad: float | None, total: float | None) -> float | None:
    """bad ÷ total; None (no data) when there were no events or no measurement."""
    if bad is None or total is None or total <= 0:
        return None
    return bad / total


def burn_rate(ratio: float | None, objective_percent: float | str | Decimal) -> float | None:
    """How many times faster than sustainable the budget burns; None without data."""
    if ratio is None:
        return None
    return ratio / float(error_budget(objective_percent))


def budget_remaining_ratio(ratio: float | None, objective_percent: float | str | Decimal) -> float | None:
    """1 - ratio ÷ budget, written the way the generated rule computes it."""
    if ratio is None:
        return None
    return 1 - (ratio / float(error_budget(objective_percent)))


def time_to_exhaustion_seconds(
    remaining_ratio: float | None, rate: float | None, period_s: float
) -> float | None:
    """Seconds until the budget is gone if the current burn rate holds; None when not burning.

    At burn rate b the budget (worth one period at rate 1) shrinks by b ÷ period per
    second, so `remaining` lasts remaining x period ÷ b. Already spent → 0.
    """
    if remaining_ratio is None or rate is None or rate <= 0:
        return None
    return max(0.0, remaining_ratio * period_s / rate)


@dataclass(frozen=True)
class Budget:
    """An SLO's state over one window; every number finite, or the whole thing `no_data`."""

    objective_percent: float
    window_seconds: float
    good: float
    total: float
    no_data: bool
    sli: float | None
    error_ratio: float | None
    burn_rate: float | None
    total_minutes: float
    consumed_ratio: float | None
    consumed_minutes: float | None
    remaining_ratio: float | None
    remaining_minutes: float | None
    time_to_exhaustion_seconds: float | None


def budget(
    objective_percent: float | str | Decimal, window_seconds: float, good: float | None, total: float | None
) -> Budget:
    """The budget over one window from good and total event counts (increases, not rates)."""
    bad = None if good is None or total is None else max(0.0, total - good)
    ratio = error_ratio(bad, total)
    minutes = budget_minutes(objective_percent, window_seconds)
    rate = burn_rate(ratio, objective_percent)
    remaining = budget_remaining_ratio(ratio, objective_percent)
    consumed = None if remaining is None else 1 - remaining
    return Budget(
        objective_percent=float(objective_percent),
        window_seconds=float(window_seconds),
        good=float(good or 0.0),
        total=float(total or 0.0),
        no_data=ratio is None,
        sli=None if ratio is None else 1 - ratio,
        error_ratio=ratio,
        burn_rate=rate,
        total_minutes=minutes,
        consumed_ratio=consumed,
        consumed_minutes=None if consumed is None else consumed * minutes,
        remaining_ratio=remaining,
        remaining_minutes=None if remaining is None else remaining * minutes,
        time_to_exhaustion_seconds=time_to_exhaustion_seconds(remaining, rate, window_seconds),
    )


# --- counters ---------------------------------------------------------------------------


def increase(samples: Sequence[Sample], start: float, end: float) -> float | None:
    """Prometheus 2.x `increase(counter[end - start])` evaluated at `end` (see module doc).

    `samples` must be sorted by time; those outside [start, end] are ignored. None
    when fewer than two samples fall in the range (Prometheus returns no series).
    """
    return _increase_of([s for s in samples if start <= s[0] <= end], start, end)


def _increase_of(inside: Sequence[Sample], start: float, end: float) -> float | None:
    if len(inside) < 2:
        return None
    first_v = inside[0][1]
    last_t, last_v = inside[-1]
    result = last_v - first_v
    previous = 0.0
    for _, value in inside:
        if value < previous:
            result += previous  # a reset: the counter went back to 0 and rose again
        previous = value
    return extrapolate(result, inside[0], last_t, len(inside), start, end)


def extrapolate(result: float, first: Sample, last_t: float, count: int, start: float, end: float) -> float:
    """`increase()`'s edge extrapolation of a reset-corrected sampled delta (count >= 2 samples)."""
    first_t, first_v = first
    to_start = first_t - start
    to_end = end - last_t
    sampled = last_t - first_t
    average = sampled / (count - 1)
    if result > 0 and first_v >= 0:
        to_zero = sampled * (first_v / result)
        if to_zero < to_start:
            to_start = to_zero
    threshold = average * 1.1
    interval = sampled
    interval += to_start if to_start < threshold else average / 2
    interval += to_end if to_end < threshold else average / 2
    return result * (interval / sampled)


def rate(samples: Sequence[Sample], start: float, end: float) -> float | None:
    """Per-second `rate()`: the extrapolated increase divided by the range length."""
    inc = increase(samples, start, end)
    return None if inc is None else inc / (end - start)


def summed_rate(series: Sequence[Sequence[Sample]], start: float, end: float) -> float | None:
    """`sum(rate(...))` over several series: series without a value drop out; none -> None."""
    total: float | None = None
    for samples in series:
        value = rate(samples, start, end)
        if value is not None:
            total = value if total is None else total + value
    return total


def window_error_ratio(
    bad: Sequence[Sequence[Sample]], total: Sequence[Sequence[Sample]], end: float, window_s: float
) -> float | None:
    """The recorded `slo:sli_error:ratio_rate<w>`: sum(rate(bad)) ÷ sum(rate(total)).

    None where Prometheus has no finite value: no total series (absent) or no traffic
    (0 ÷ 0). As in Prometheus, no bad series at all makes the ratio absent too; callers
    that know the bad count is zero pass a series of zeros.
    """
    start = end - window_s
    total_rate = summed_rate(total, start, end)
    bad_rate = summed_rate(bad, start, end)
    if total_rate is None or bad_rate is None or total_rate == 0:
        return None
    return bad_rate / total_rate


def latency_error_ratio(
    good: Sequence[Sequence[Sample]], total: Sequence[Sequence[Sample]], end: float, window_s: float
) -> float | None:
    """Latency SLIs as the rule writes them: (sum(rate(total)) - sum(rate(good))) ÷ sum(rate(total))."""
    start = end - window_s
    total_rate = summed_rate(total, start, end)
    good_rate = summed_rate(good, start, end)
    if total_rate is None or good_rate is None or total_rate == 0:
        return None
    return (total_rate - good_rate) / total_rate


# --- long windows from short-window counts ---------------------------------------------


def uses_count_records(
    window_s: float, step_s: float = COUNT_STEP_SECONDS, min_s: float = LONG_WINDOW_MIN_SECONDS
) -> bool:
    """Whether the rules build this window from the count records (tests pass scaled values).

    Only whole multiples of the step can be tiled by records without a partial one.
    """
    return window_s >= min_s and window_s % step_s == 0


def grid_increase(samples: Sequence[Sample], start: float, end: float, step: float) -> float | None:
    """Increase of one counter over (start, end] as the count records add it up.

    The contract the rules implement: for every grid point p, a multiple of `step`
    counted from t = 0 (the Unix epoch) with start < p <= end, the record at p is
    `increase(samples, p - step, p)` (Prometheus 2.x: closed range, edges extrapolated);
    the result is the sum of those records, points without one (fewer than two samples
    in their range) adding nothing, and None when no point has one. A window W
    evaluated at t is `grid_increase(samples, t - W, t, step)`.

    In PromQL: `sum_over_time(record[W - 1ms:step])`. The subquery evaluates the record
    at the grid points of [t - W + 1ms, t] (so not at t - W, which Prometheus 2's
    closed range would add as one record too many); each point takes the record
    written at that instant, as the record sits first in the group evaluated at every
    grid point (promtool evaluates every step; Prometheus every evaluation_interval,
    which divides 5m, at its own phase: there the grid is shifted by that phase).

    When samples fall on the grid this is exactly `increase(samples, t - W, t)` at any
    grid-aligned t, counter resets included. It differs by edge extrapolation where they
    do not, and across a scrape gap longer than a step, where no record spans the gap:
    the events during it are not counted (nor invented).
    """
    times = [s[0] for s in samples]
    total: float | None = None
    for k in grid_points(start, end, step):
        p = k * step
        inside = samples[bisect_left(times, p - step) : bisect_right(times, p)]
        value = _increase_of(inside, p - step, p)
        if value is not None:
            total = value if total is None else total + value
    return total


def grid_points(start: float, end: float, step: float) -> range:
    """Indexes k of the grid points p = k x step with start < p <= end."""
    return range(int(start // step) + 1, int(end // step) + 1)


def _summed_on_grid(series: Sequence[Sequence[Sample]], step: float) -> Callable[[float], float | None]:
    """p -> `sum(increase(series[step]))` at p; each call bisects instead of scanning."""
    indexed = [(samples, [s[0] for s in samples]) for samples in series]

    def at(p: float) -> float | None:
        total: float | None = None
        for samples, times in indexed:
            inside = samples[bisect_left(times, p - step) : bisect_right(times, p)]
            value = _increase_of(inside, p - step, p)
            if value is not None:
                total = value if total is None else total + value
        return total

    return at


def grid_counts(
    total: Sequence[Sequence[Sample]],
    end: float,
    window_s: float,
    step: float = COUNT_STEP_SECONDS,
    *,
    good: Sequence[Sequence[Sample]] | None = None,
    bad: Sequence[Sequence[Sample]] | None = None,
) -> tuple[float | None, float] | None:
    """(good, total) events over (end - window_s, end], as the long-window rules add them up.

    Per grid point p (see `grid_increase`) the rules record total_p = the summed
    `increase` of the `total` series over [p - step, p], and good_p = that of the `good`
    series for kinds that select their good events, or total_p minus that of the `bad`
    series (total_p while no bad series has a value) for kinds that select their bad
    ones; pass exactly one of `good` and `bad`. Points without a total add nothing;
    None when no point has one. Good is None when no point has a good record (only
    possible with `good`): the rule's ratio then has no value either.
    """
    if (good is None) == (bad is None):
        raise ValueError("pass the good or the bad events, not both")
    total_at = _summed_on_grid(total, step)
    part_at = _summed_on_grid(good if good is not None else bad or (), step)
    good_sum: float | None = None
    total_sum: float | None = None
    for k in grid_points(end - window_s, end, step):
        p = k * step
        events = total_at(p)
        if events is None:
            continue
        part = part_at(p)
        good_p = part if good is not None else (events if part is None else events - part)
        total_sum = events if total_sum is None else total_sum + events
        if good_p is not None:
            good_sum = good_p if good_sum is None else good_sum + good_p
    return None if total_sum is None else (good_sum, total_sum)


def grid_error_ratio(
    total: Sequence[Sequence[Sample]],
    end: float,
    window_s: float,
    step: float = COUNT_STEP_SECONDS,
    *,
    good: Sequence[Sequence[Sample]] | None = None,
    bad: Sequence[Sequence[Sample]] | None = None,
) -> float | None:
    """A long-window `slo:sli_error:ratio_rate<w>`: (total - good) ÷ total of `grid_counts`.

    No total, or a total of zero, is no data (None). Still a ratio of sums, never an
    average of per-step ratios: a busy five minutes weighs more than a quiet one.
    """
    counts = grid_counts(total, end, window_s, step, good=good, bad=bad)
    if counts is None or counts[0] is None or counts[1] == 0:
        return None
    return (counts[1] - counts[0]) / counts[1]


# --- multi-window multi-burn-rate alerting ----------------------------------------------


@dataclass(frozen=True)
class TierSpec:
    """One tier: alert when `budget_share` of the period's budget burns within `long_window`."""

    name: str
    long_window: str
    short_window: str
    budget_share: str
    severity: str
    for_: str
    keep_firing_for: str = "0s"


# Google SRE workbook, "Alerting on SLOs", table 5-8 (and its ticket rows); the `for:`
# values are lightkeeper's (reasons in lightkeeper.stack.slo).
DEFAULT_TIERS: tuple[TierSpec, ...] = (
    TierSpec("page-fast", "1h", "5m", "0.02", "critical", "2m"),
    TierSpec("page-slow", "6h", "30m", "0.05", "critical", "15m"),
    TierSpec("ticket-fast", "1d", "2h", "0.1", "medium", "1h"),
    TierSpec("ticket-slow", "3d", "6h", "0.1", "medium", "1h"),
)


def burn_factor(budget_share: Decimal | str | float, period_s: int, long_window_s: int) -> Decimal:
    """Burn rate that spends `budget_share` of a `period_s` budget within `long_window_s`.

    Rounded to 4 places (only uneven periods such as 28d over 3d need it), so the
    rules read 14.4, never 14.399999.
    """
    raw = to_decimal(budget_share) * Decimal(period_s) / Decimal(long_window_s)
    return raw.quantize(_FACTOR_QUANTUM, rounding=ROUND_HALF_EVEN).normalize()


def threshold(factor: Decimal, objective_percent: float | str | Decimal) -> Decimal:
    """Error-ratio threshold of a tier: factor x budget (14.4 x 0.001 = 0.0144), exact."""
    return factor * error_budget(objective_percent)


def tier_condition(long_ratio: float | None, short_ratio: float | None, limit: float) -> bool:
    """Both windows above the threshold; a window without data never alerts."""
    return long_ratio is not None and short_ratio is not None and long_ratio > limit and short_ratio > limit


@dataclass(frozen=True)
class ResolvedTier:
    """A tier resolved for one SLO: windows in seconds, its factor and its error-ratio threshold."""

    spec: TierSpec
    long_s: int
    short_s: int
    factor: Decimal
    threshold: Decimal


def resolve_tier(tier: TierSpec, objective_percent: float | str | Decimal, period_s: int) -> ResolvedTier:
    """Factor and threshold of one tier for one SLO (no validity checks; the generator adds those)."""
    long_s, short_s = duration_seconds(tier.long_window), duration_seconds(tier.short_window)
    factor = burn_factor(tier.budget_share, period_s, long_s)
    return ResolvedTier(tier, long_s, short_s, factor, threshold(factor, objective_percent))


@dataclass
class AlertTracker:
    """Prometheus 2.42's alert state machine for one alert series: `for` and `keep_firing_for`.

    Feed one condition per evaluation, in time order. Pending starts at the first true
    evaluation and fires once `for_s` has passed since it; a firing alert whose
    condition turns false keeps firing while less than `keep_s` has passed since the
    first false evaluation; a pending one resets at once.
    """

    for_s: float = 0.0
    keep_s: float = 0.0
    state: str = "inactive"
    _active_at: float = field(default=0.0, repr=False)
    _keep_since: float | None = field(default=None, repr=False)

    def step(self, ts: float, condition: bool) -> str:
        if condition:
            self._keep_since = None
            if self.state == "inactive":
                self.state, self._active_at = "pending", ts
            if self.state == "pending" and ts - self._active_at >= self.for_s:
                self.state = "firing"
            return self.state
        if self.state == "firing" and self.keep_s > 0:
            if self._keep_since is None:
                self._keep_since = ts
            if ts - self._keep_since < self.keep_s:
                return self.state
        self.state = "inactive"
        self._keep_since = None
        return self.state
