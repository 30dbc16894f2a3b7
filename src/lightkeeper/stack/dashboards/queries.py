"""PromQL for dashboard panels, built only from catalogue signals.

Every selector is scoped by the dashboard's `$service` and `$environment` variables
(target labels Prometheus attaches to every series), every `rate` is taken over a
raw counter before any `sum`, and a label used in a matcher or a grouping must be one
the signal carries: a typo fails at generation, not as an empty panel in production.
"""

from __future__ import annotations

from collections.abc import Sequence

from lightkeeper.catalogue import Signal
from lightkeeper.stack import promql
from lightkeeper.stack.names import SERVER_JOB
from lightkeeper.stack.promql import Matcher

RATE = "$__rate_interval"
# Labels Prometheus adds to every scraped series (H2's scrape config sets service and environment).
TARGET_LABELS: tuple[str, ...] = ("service", "environment", "instance", "job")
SCOPE: tuple[Matcher, ...] = (("service", "=", "$service"), ("environment", "=~", "$environment"))
BY_ENV: tuple[str, ...] = ("environment",)


def _check_labels(signal: Signal, labels: Sequence[str], histogram: bool = False) -> None:
    allowed = {*signal.labels, *TARGET_LABELS, *(("le",) if histogram else ())}
    unknown = [label for label in labels if label not in allowed]
    if unknown:
        raise ValueError(
            f"{signal.name} has no label {', '.join(unknown)}; it carries {', '.join(signal.labels)}"
        )


def series(signal: Signal, suffix: str = "", *extra: Matcher) -> str:
    """`name{service="$service",environment=~"$environment",...}` for one sample name of a family."""
    name = signal.name + suffix
    if name not in signal.series_names:
        raise ValueError(
            f"{name} is not a sample of {signal.name}; use one of {', '.join(signal.series_names)}"
        )
    _check_labels(signal, [m[0] for m in extra], histogram=suffix == "_bucket")
    return promql.selector(name, [*SCOPE, *extra])


def _by(signal: Signal, labels: Sequence[str], histogram: bool = False) -> str:
    _check_labels(signal, labels, histogram)
    return promql.by(*labels)


def rate(signal: Signal, *extra: Matcher, suffix: str = "", window: str = RATE, fn: str = "rate") -> str:
    return f"{fn}({series(signal, suffix, *extra)}[{window}])"


def sum_rate(
    signal: Signal,
    by: Sequence[str] = BY_ENV,
    *extra: Matcher,
    suffix: str = "",
    window: str = RATE,
    fn: str = "rate",
) -> str:
    """`sum by (...) (rate(counter[w]))`: rate first, so a restart is never a negative spike."""
    return f"sum {_by(signal, by)} ({rate(signal, *extra, suffix=suffix, window=window, fn=fn)})"


def aggregate(agg: str, signal: Signal, by: Sequence[str] = BY_ENV, *extra: Matcher) -> str:
    """`agg by (...) (gauge{...})` for gauges."""
    return f"{agg} {_by(signal, by)} ({series(signal, '', *extra)})"


def server(agg: str, signal: Signal, by: Sequence[str] = ()) -> str:
    """A gauge of the lightkeeper server: its series carry `probe`, not `$service`."""
    _check_labels(signal, by)
    return f"{agg} {promql.by(*by)} ({promql.selector(signal, [('job', '=', SERVER_JOB)])})"


def quantile(q: str, signal: Signal, by: Sequence[str] = BY_ENV, *extra: Matcher, window: str = RATE) -> str:
    """`histogram_quantile(q, sum by (le, ...) (rate(x_bucket[w])))`."""
    grouped = _by(signal, ("le", *by), histogram=True)
    return f"histogram_quantile({q}, sum {grouped} ({rate(signal, *extra, suffix='_bucket', window=window)}))"


def ratio(numerator: str, denominator: str) -> str:
    return f"({numerator}) / ({denominator})"


def share_of(
    signal: Signal,
    bad: Sequence[Matcher],
    by: Sequence[str] = BY_ENV,
    base: Sequence[Matcher] = (),
    window: str = RATE,
) -> str:
    """Share of a counter's events matching `bad`; request-weighted, rate before sum.

    `or <total> * 0` turns "no bad series yet" into 0 instead of an empty panel.
    """
    num = sum_rate(signal, by, *base, *bad, window=window)
    den = sum_rate(signal, by, *base, window=window)
    return ratio(f"{num} or {den} * 0", den)
