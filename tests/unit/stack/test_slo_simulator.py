"""The burn-rate evaluation simulator, step by step, against hand-computed outcomes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from lightkeeper.stack.rule_defs import AlertDef
from lightkeeper.stack.slo_simulator import (
    AmbiguousError,
    Segment,
    SimTier,
    Simulation,
    Traffic,
    condition_runs,
)

D = Decimal
ALERT = AlertDef("Burn", "vector(1)", "critical", "slo", "api", "", "", "slos")


def tier(long: int, short: int, for_steps: int = 0, threshold: float = 0.1) -> SimTier:
    return SimTier(ALERT, long, short, for_steps, threshold)


def test_traffic_accumulates_segments_from_zero() -> None:
    traffic = Traffic.of([Segment(2, D(9), D(1)), Segment(1, D(0), D(5))])
    assert traffic.total == [0, 10, 20, 25]
    assert traffic.bad == [0, 1, 2, 7]
    assert traffic.steps == 3


def test_window_is_clipped_at_the_first_sample() -> None:
    traffic = Traffic.of([Segment(3, D(10), D(0))])
    assert traffic.window(2, 10) == (D(20), D(0))
    assert traffic.window(3, 1) == (D(10), D(0))


def test_ratio_needs_two_samples_and_some_traffic() -> None:
    traffic = Traffic.of([Segment(2, D(0), D(0)), Segment(1, D(3), D(1))])
    assert traffic.ratio(0, 5) is None  # one sample: rate() has nothing to compare
    assert traffic.ratio(2, 2) is None  # no requests in the window: 0/0
    assert traffic.ratio(3, 1) == 0.25


def test_condition_runs_count_consecutive_burning_evaluations() -> None:
    traffic = Traffic.of([Segment(2, D(10), D(0)), Segment(3, D(5), D(5)), Segment(2, D(10), D(0))])
    runs = condition_runs(traffic, tier(long=1, short=1), min_requests=0, tie=False)
    assert runs == [0, 0, 0, 1, 2, 3, 0, 0]


def test_long_window_dilutes_a_short_burst() -> None:
    traffic = Traffic.of([Segment(8, D(100), D(0)), Segment(1, D(50), D(50))])
    # short window (1 step): 50 % bad; long window (9 steps): 50 / 900 < 10 %
    assert condition_runs(traffic, tier(long=9, short=1), 0, tie=False)[-1] == 0
    assert condition_runs(traffic, tier(long=1, short=1), 0, tie=False)[-1] == 1


def test_min_requests_keeps_a_quiet_window_silent() -> None:
    traffic = Traffic.of([Segment(3, D(0), D(2))])
    assert condition_runs(traffic, tier(long=3, short=1), min_requests=7, tie=False) == [0, 0, 0, 0]
    assert condition_runs(traffic, tier(long=3, short=1), min_requests=6, tie=False)[-1] == 1


def test_firing_waits_for_the_for_duration() -> None:
    traffic = Traffic.of([Segment(1, D(10), D(0)), Segment(4, D(0), D(10))])
    slow = tier(long=1, short=1, for_steps=2)
    sim = Simulation(traffic, [slow], min_requests=0)
    # burning from step 2: pending at 2 and 3, firing once 2 steps have elapsed
    assert [bool(sim.firing(t)) for t in range(traffic.steps + 1)] == [False, False, False, False, True, True]


def test_only_tiers_whose_both_windows_burn_fire() -> None:
    traffic = Traffic.of([Segment(4, D(100), D(0)), Segment(1, D(70), D(30))])
    fast, slow = tier(long=1, short=1, threshold=0.2), tier(long=5, short=1, threshold=0.2)
    assert Simulation(traffic, [fast, slow], 0).firing(5) == [fast]


def test_a_ratio_on_the_threshold_is_ambiguous() -> None:
    traffic = Traffic.of([Segment(2, D(9), D(1))])  # exactly 10 % bad
    sim = Simulation(traffic, [tier(long=1, short=1, threshold=0.1)], 0)
    with pytest.raises(AmbiguousError):
        sim.firing(2)
    assert sim.firing(0) == []  # no ratio yet: the same both ways


def test_keep_firing_for_counts_from_the_first_false_evaluation() -> None:
    # Bad at steps 1-3 only; a one-step short window clears at step 4. Prometheus keeps the
    # alert while `ts - first_false < keep_firing_for`: with 3 steps, through step 6.
    traffic = Traffic.of([Segment(3, D(0), D(10)), Segment(6, D(10), D(0))])
    kept = SimTier(ALERT, 1, 1, 0, 0.1, keep_steps=3)
    plain = tier(1, 1)
    sim = Simulation(traffic, [kept, plain], 0)
    assert [len(sim.firing(t)) for t in range(1, 9)] == [2, 2, 2, 1, 1, 1, 0, 0]
    assert sim.firing(6) == [kept]
