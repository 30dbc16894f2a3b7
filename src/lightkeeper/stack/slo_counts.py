"""Long SLO windows built from 5-minute event counts instead of the raw counters.

An `increase(http_requests_total[30d])` scans every raw sample of every matching
series at each evaluation. Instead each SLO records its good and total events of the
last step (5 min), and a window of a day or more adds those records up: a ratio of
summed counts, never an average of per-step ratios. `lightkeeper.slo_math.grid_increase`
is the exact reference; its docstring is the contract the server computes too.

The records are written at every evaluation of the SLO's group, so stored records
overlap; the subquery `[W - 1ms:5m]` takes one per 5-minute grid point, whatever the
evaluation interval (promtool evaluates every group at every step, ignoring a group's
own interval, so a plain `sum_over_time(record[W])` would count each step many times).
The `- 1ms` leaves out the grid point at t - W that Prometheus 2's closed ranges
would add. Windows shorter than a day stay on the raw counters: the page tiers must
follow the latest scrape, and they are a small share of the samples scanned.
"""

from __future__ import annotations

from lightkeeper import slo_math as shared
from lightkeeper.spec.models import SLO
from lightkeeper.spec.sli_events import Part
from lightkeeper.stack import promql, sli_queries
from lightkeeper.stack.promql import selector
from lightkeeper.stack.rule_defs import RecordingRule
from lightkeeper.stack.rule_exprs import Ctx


def good_record(step: str) -> str:
    """Good events over the last `step`, labels service, environment, slo."""
    return f"{shared.GOOD_COUNT_RECORD_PREFIX}{step}"


def total_record(step: str) -> str:
    """All events over the last `step`, labels service, environment, slo."""
    return f"{shared.TOTAL_COUNT_RECORD_PREFIX}{step}"


def count_step(ctx: Ctx) -> str:
    """One record's range: 5m, or what the profile scales it to (5s in the test profile)."""
    return ctx.w(promql.duration(shared.COUNT_STEP_SECONDS))


def from_counts(ctx: Ctx, window: str) -> bool:
    """Whether this (already scaled) window is added up from the count records."""
    long_min = promql.seconds(ctx.w(promql.duration(shared.LONG_WINDOW_MIN_SECONDS)))
    return shared.uses_count_records(promql.seconds(window), promql.seconds(count_step(ctx)), long_min)


def count_rules(ctx: Ctx, slo: SLO) -> list[RecordingRule]:
    """Total then good events of the last step; with no bad series yet, good = total."""
    spec, step = ctx.spec, count_step(ctx)
    events = sli_queries.slo_events(spec, slo)
    scope = sli_queries.scope_matchers(spec, events)

    def summed(part: Part) -> str:
        return sli_queries.summed(events, part, scope, step, spec.service, fn="increase")

    total = summed(events.total)
    if events.good is not None:
        good = summed(events.good)
    else:
        assert events.bad is not None
        good = f"{total} - {summed(events.bad)}\nor\n{total}"
    labels = {"slo": slo.name}
    return [RecordingRule(total_record(step), total, labels), RecordingRule(good_record(step), good, labels)]


def just_under(window: str) -> str:
    """`window` less one millisecond, in Prometheus' compound form: 30d -> 29d23h59m59s999ms."""
    rest = promql.seconds(window) * 1000 - 1
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)


def counted(ctx: Ctx, slo: SLO, record: str, window: str) -> str:
    """`record` added up over `window`, one record per grid step (labels service, environment, slo)."""
    sel = selector(record, ctx.m((), ("slo", "=", slo.name)))
    return f"sum_over_time({sel}[{just_under(window)}:{count_step(ctx)}])"


def total_increase(ctx: Ctx, slo: SLO, window: str) -> str:
    """Events over a long window, for the burn-rate alerts' low-traffic guard."""
    return counted(ctx, slo, total_record(count_step(ctx)), window)


def error_ratio(ctx: Ctx, slo: SLO, window: str) -> str:
    """(total - good) / total over a long window: summed counts, event-weighted."""
    step = count_step(ctx)
    total = counted(ctx, slo, total_record(step), window)
    good = counted(ctx, slo, good_record(step), window)
    return f"({total} - {good})\n/\n{total}"
