"""Replays Prometheus' evaluation of burn-rate alerts over synthetic request counters.

The generated SLO rule tests must state, for each evaluation, which tiers fire; this
simulator computes it the way Prometheus 2.x does: a counter's increase over the
closed range [t - w, t] with no extrapolation (the series start at zero with the
data), a ratio per window, both windows above the threshold, `for` counted from
the first true evaluation and `keep_firing_for` from the first false one. Ratios that
sit on a threshold to within float error are decided both ways; an outcome that differs
raises AmbiguousError instead of guessing.

Time is counted in steps (one input sample and one evaluation per step).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from lightkeeper.stack.rule_defs import AlertDef

_EPS = 1e-9


@dataclass(frozen=True)
class Segment:
    """`steps` consecutive steps, each adding `good` and `bad` requests."""

    steps: int
    good: Decimal
    bad: Decimal


@dataclass
class Traffic:
    """Cumulative good+bad and bad counts per step, starting at zero."""

    total: list[Decimal]
    bad: list[Decimal]

    @classmethod
    def of(cls, segments: Iterable[Segment]) -> Traffic:
        total, bad = [Decimal(0)], [Decimal(0)]
        for seg in segments:
            for _ in range(seg.steps):
                total.append(total[-1] + seg.good + seg.bad)
                bad.append(bad[-1] + seg.bad)
        return cls(total, bad)

    @property
    def steps(self) -> int:
        return len(self.total) - 1

    def window(self, t: int, w: int) -> tuple[Decimal, Decimal]:
        start = max(0, t - w)
        return self.total[t] - self.total[start], self.bad[t] - self.bad[start]

    def ratio(self, t: int, w: int) -> float | None:
        if t == 0:
            return None  # one sample: rate() has nothing to compare
        total, bad = self.window(t, w)
        return None if total == 0 else float(bad / total)


@dataclass(frozen=True)
class SimTier:
    """One burn-rate alert rule, its windows and `for` counted in steps."""

    alert: AlertDef
    long: int
    short: int
    for_steps: int
    threshold: float
    keep_steps: int = 0  # keep_firing_for, in steps


class AmbiguousError(Exception):
    """A check hinges on a ratio that sits exactly on a threshold (float rounding decides)."""


def _above(ratio: float | None, threshold: float, tie: bool) -> bool:
    if ratio is None:
        return False
    if abs(ratio - threshold) <= threshold * _EPS:
        return tie
    return ratio > threshold


def condition_runs(traffic: Traffic, tier: SimTier, min_requests: int, tie: bool) -> list[int]:
    """For each step, how many consecutive evaluations (ending there) found both windows burning.

    `tie` decides ratios that equal the threshold to within float error; the simulation
    runs both ways and only trusts outcomes that agree.
    """
    runs: list[int] = []
    for s in range(traffic.steps + 1):
        ok = _above(traffic.ratio(s, tier.long), tier.threshold, tie) and _above(
            traffic.ratio(s, tier.short), tier.threshold, tie
        )
        if ok and min_requests:
            ok = traffic.window(s, tier.long)[0] >= min_requests
        runs.append((runs[-1] + 1 if runs else 1) if ok else 0)
    return runs


class Simulation:
    """Which tiers fire at which step, as Prometheus would evaluate them every step."""

    def __init__(self, traffic: Traffic, tiers: list[SimTier], min_requests: int) -> None:
        self.tiers = tiers
        self.runs = {
            tie: [condition_runs(traffic, tier, min_requests, tie) for tier in tiers] for tie in (False, True)
        }

    def firing(self, t: int) -> list[SimTier]:
        """Pending from the first true evaluation; firing once `for` has elapsed since then,
        and still firing `keep_steps` evaluations after the last one that fired (Prometheus
        counts keep_firing_for from the first false evaluation)."""

        def fired(runs: list[int], s: int, tier: SimTier) -> bool:
            return bool(runs[s]) and runs[s] - 1 >= tier.for_steps

        outcomes = [
            [
                tier
                for tier, runs in zip(self.tiers, self.runs[tie], strict=True)
                if any(fired(runs, s, tier) for s in range(max(0, t - tier.keep_steps), t + 1))
            ]
            for tie in (False, True)
        ]
        if outcomes[0] != outcomes[1]:
            raise AmbiguousError
        return outcomes[0]
