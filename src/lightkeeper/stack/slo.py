"""Multi-window multi-burn-rate math, as pure functions over data.

The tiers are the Google SRE workbook's, kept as *budget shares* rather than
hard-coded factors: "page when 2 % of the period's budget burns within 1 h". The
burn-rate factor then follows for any period:

    factor = budget_share x period / long_window      (30d: 0.02 x 720h / 1h = 14.4)
    threshold = factor x (1 - objective)               (14.4 x 0.001 = 0.0144)

so a 28-day or 90-day SLO gets the factors that spend the same share of *its*
budget, where tools with a hard-coded 14.4 silently page too late or too early.

A `calendar_month` period is computed as 30 days nominal (the workbook's own
numbers). In a 31-day month the page tier then fires after 1.94 % of the budget
instead of 2 % (earlier, the safe side); in February after 2.14 % (7 % later). The
error-budget-remaining rule uses a rolling 30-day window, because a range selector
cannot start at the first of the month.

All arithmetic is decimal: factors are rounded to 4 decimal places (only periods
that do not divide evenly, such as 28d over 3d, need it), and thresholds are the
exact product, so the rules read `0.0144`, never `0.014400000000000001`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from lightkeeper import slo_math as shared
from lightkeeper.catalogue import HTTP_DURATION_BUCKETS
from lightkeeper.spec.models import SLI, SLO, LatencySLI, PrometheusOptions, Severity
from lightkeeper.stack import promql
from lightkeeper.stack.errors import GenerationError

CALENDAR_MONTH = shared.CALENDAR_MONTH
CALENDAR_MONTH_SECONDS = shared.CALENDAR_MONTH_SECONDS


@dataclass(frozen=True)
class TierData:
    """One alerting tier as data: which share of the budget may burn in which windows."""

    name: str
    long_window: str
    short_window: str
    budget_share: str
    severity: Severity
    for_: str


# Windows and budget shares: Google SRE workbook, chapter "Alerting on SLOs", table 5-8
# (and its 1d/3d ticket rows). The table gives no `for:`; those are lightkeeper's own:
# - page-fast 2m: the burn must hold for two minutes, so one bad scrape in the 5m window
#   cannot page; it adds 2m to detection (the workbook's 1h tier detects in ~1m).
# - page-slow 15m: half the 30m short window; the tier exists for burns too slow for
#   page-fast, so waiting a quarter hour costs little and filters bursts page-fast covers.
# - ticket-fast / ticket-slow 1h: tickets are handled within the day; an hour of
#   sustained burn is the least worth a ticket.
# - no data 15m (`alerting.no_data_for`): a quarter hour without one counted request
#   means a broken scrape, relabelling or SLI selector rather than a quiet service, and
#   the budget is blind meanwhile; shorter would fire on every restart and redeploy.
# The shares and windows live in the shared SLO math, which the server evaluates too.
DEFAULT_TIERS: tuple[TierData, ...] = tuple(
    TierData(t.name, t.long_window, t.short_window, t.budget_share, cast(Severity, t.severity), t.for_)
    for t in shared.DEFAULT_TIERS
)
_PAGE_SEVERITIES: tuple[Severity, ...] = ("critical", "high")


@dataclass(frozen=True)
class Tier:
    """A tier resolved for one SLO: the factor and the error-ratio threshold to alert on."""

    name: str
    long_window: str
    short_window: str
    severity: Severity
    for_: str
    budget_share: Decimal
    factor: Decimal
    threshold: Decimal


def period_seconds(period: str) -> int:
    """Length of an SLO period; `calendar_month` counts as 30 days (see module doc)."""
    return CALENDAR_MONTH_SECONDS if period == CALENDAR_MONTH else promql.seconds(period)


def period_window(period: str) -> str:
    """The range used for the whole-period error ratio (`30d` for a calendar month)."""
    return promql.duration(period_seconds(period))


def error_budget(objective_percent: float) -> Decimal:
    """Allowed bad share: 99.9 -> 0.001, exactly."""
    return shared.error_budget(objective_percent)


def burn_factor(budget_share: Decimal | str, period_s: int, long_window_s: int) -> Decimal:
    """Burn rate that spends `budget_share` of a `period_s` budget within `long_window_s`.

    Delegates to the shared SLO math, so the server's alert states use the same factor.
    """
    return shared.burn_factor(budget_share, period_s, long_window_s)


def tier_data(slo: SLO) -> list[TierData]:
    """The spec's own tiers if given, else the workbook's; filtered by page/ticket switches."""
    if slo.alerting.tiers is not None:
        data = [
            TierData(
                t.name,
                t.long_window,
                t.short_window,
                promql.number(t.budget_share),
                t.severity,
                t.for_ or "0s",
            )
            for t in slo.alerting.tiers
        ]
    else:
        data = list(DEFAULT_TIERS)
    return [t for t in data if (slo.alerting.page if t.severity in _PAGE_SEVERITIES else slo.alerting.ticket)]


def resolve_tiers(slo: SLO) -> list[Tier]:
    """Factors and thresholds for one SLO; raises when a tier could never fire."""
    budget = error_budget(slo.objective)
    period_s = period_seconds(slo.period)
    tiers: list[Tier] = []
    for data in tier_data(slo):
        long_s, short_s = promql.seconds(data.long_window), promql.seconds(data.short_window)
        if short_s >= long_s:
            raise GenerationError(
                f"SLO {slo.name!r} tier {data.name!r}: short_window {data.short_window} must be shorter "
                f"than long_window {data.long_window}; the workbook uses 1/12 of it (1h and 5m)",
                loc=_tier_loc(slo, data.name, "short_window"),
            )
        factor = burn_factor(data.budget_share, period_s, long_s)
        threshold = factor * budget
        if threshold >= 1:
            raise GenerationError(
                f"SLO {slo.name!r} ({promql.number(slo.objective)} %) can never fire its {data.name!r} tier: "
                f"burn rate {promql.number(factor)} x error budget {promql.number(budget)} = "
                f"{promql.number(threshold)} >= 1, a share of bad requests above 100 %. "
                f"Raise the objective, or set alerting.tiers with a smaller budget_share "
                f"or a longer long_window for this SLO",
                loc=_tier_loc(slo, data.name, "budget_share"),
            )
        tiers.append(
            Tier(
                data.name,
                data.long_window,
                data.short_window,
                data.severity,
                data.for_,
                promql.decimal(data.budget_share),
                factor,
                threshold,
            )
        )
    return tiers


def _tier_loc(slo: SLO, tier: str, field: str) -> tuple[str | int, ...]:
    """The spec's own tier entry when it has one, else the objective the default tiers scale with."""
    names = [t.name for t in slo.alerting.tiers or []]
    if tier in names:
        return ("slos", slo.name, "alerting", "tiers", names.index(tier), field)
    return ("slos", slo.name, "objective")


def windows(slo: SLO) -> list[str]:
    """Every range this SLO's rules need (tier windows and the period), shortest first."""
    found = {promql.seconds(w) for t in tier_data(slo) for w in (t.long_window, t.short_window)}
    found.add(period_seconds(slo.period))
    return [promql.duration(s) for s in sorted(found)]


def latency_le(sli: SLI) -> str:
    """The `le` label of the bucket that bounds a latency SLI; raises if it is not a bucket."""
    if not isinstance(sli, LatencySLI):
        raise GenerationError(f"a {sli.kind} SLI has no latency bucket")
    for bound in HTTP_DURATION_BUCKETS:
        if promql.decimal(bound) == promql.decimal(sli.threshold_seconds):
            return promql.le_label(bound)
    buckets = ", ".join(promql.number(b) for b in HTTP_DURATION_BUCKETS)
    raise GenerationError(
        f"latency threshold {promql.number(sli.threshold_seconds)}s is not a bucket boundary of "
        f"http_request_duration_seconds, so the share of faster requests would be a guess; "
        f"use one of: {buckets}"
    )


def history(prometheus: PrometheusOptions) -> tuple[str, str]:
    """How long the SLO period can look back, and the spec field that says so.

    With `remote_write` to a store whose `retention` is given, the period's ratio reads
    that store's history (the longest one, when several keep it); otherwise Prometheus' own.
    """
    long_term = [(i, rw.retention) for i, rw in enumerate(prometheus.remote_write) if rw.retention]
    if not long_term:
        return prometheus.retention, "prometheus.retention"
    index, retention = max(long_term, key=lambda k: (promql.seconds(k[1]), -k[0]))
    return retention, f"prometheus.remote_write[{index}].retention"


def check_retention(slo: SLO, prometheus: PrometheusOptions | str) -> None:
    """Every window must fit in the history it reads, or its ratio is silently truncated.

    The burn-rate tiers alert from Prometheus itself, so they must fit its own retention;
    the whole-period window may read a long-term store's (see `history`).
    """
    if isinstance(prometheus, str):
        local, (period, period_field) = prometheus, (prometheus, "prometheus.retention")
    else:
        local, (period, period_field) = prometheus.retention, history(prometheus)
    period_window_seconds = period_seconds(slo.period)
    for window in windows(slo):
        is_period = promql.seconds(window) == period_window_seconds
        keep, field = (period, period_field) if is_period else (local, "prometheus.retention")
        if promql.seconds(window) > promql.seconds(keep):
            raise GenerationError(
                f"SLO {slo.name!r} needs {window} of history but {field} is {keep}; "
                f"set {field} to at least {window}, or shorten the SLO period",
                loc=("slos", slo.name, "period"),
            )


def check(slo: SLO, prometheus: PrometheusOptions | str) -> list[Tier]:
    """Every generation-time check for one SLO (against `prometheus.retention` when given a
    string); returns its resolved tiers."""
    if isinstance(slo.sli, LatencySLI):
        try:
            latency_le(slo.sli)
        except GenerationError as exc:
            raise GenerationError(str(exc), loc=("slos", slo.name, "sli", "threshold_seconds")) from None
    check_retention(slo, prometheus)
    return resolve_tiers(slo)
