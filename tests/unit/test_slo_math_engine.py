"""The shared SLO math: budget minutes, counter handling, alert state machine, no NaN."""

from __future__ import annotations

import math

import pytest

from lightkeeper import slo_math as m

MONTH = 30 * 86400


def test_budget_minutes_match_the_worked_examples() -> None:
    assert m.budget_minutes(99.5, MONTH) == pytest.approx(216.0)
    assert m.budget_minutes(99.9, MONTH) == pytest.approx(43.2)


def test_budget_from_counts_and_no_data() -> None:
    b = m.budget(99.9, MONTH, good=9995, total=10000)
    assert b.error_ratio == pytest.approx(0.0005)
    assert b.remaining_ratio == pytest.approx(0.5)
    assert b.remaining_minutes == pytest.approx(21.6)
    assert b.burn_rate == pytest.approx(0.5)
    assert b.time_to_exhaustion_seconds == pytest.approx(0.5 * MONTH / 0.5)
    empty = m.budget(99.9, MONTH, good=0, total=0)
    assert empty.no_data and empty.remaining_ratio is None and empty.burn_rate is None
    assert all(not (isinstance(v, float) and not math.isfinite(v)) for v in vars(empty).values())


def test_not_burning_has_no_exhaustion_time() -> None:
    assert m.budget(99.9, MONTH, good=100, total=100).time_to_exhaustion_seconds is None


def test_factors_follow_budget_share() -> None:
    assert str(m.burn_factor("0.02", MONTH, 3600)) == "14.4"
    assert m.burn_factor("0.05", MONTH, 6 * 3600) == 6
    assert m.burn_factor("0.1", MONTH, 86400) == 3
    assert m.burn_factor("0.1", MONTH, 3 * 86400) == 1
    assert str(m.threshold(m.burn_factor("0.02", MONTH, 3600), 99.9)) == "0.0144"


def test_increase_handles_a_reset_without_negative_traffic() -> None:
    samples = [(0.0, 0.0), (10.0, 100.0), (20.0, 30.0), (30.0, 60.0)]
    assert m.increase(samples, 0.0, 30.0) == pytest.approx(160.0)


def test_increase_needs_two_samples_and_extrapolates_like_prometheus() -> None:
    assert m.increase([(5.0, 1.0)], 0.0, 10.0) is None
    samples = [(10.0, 50.0), (20.0, 60.0), (30.0, 70.0)]
    # Gaps to both edges under 1.1 x the 10 s interval: extrapolated fully, 20 over 20 s -> 40 s.
    assert m.increase(samples, 0.0, 40.0) == pytest.approx(40.0)
    # 30 s to the end is too far: only half an interval (5 s) is added there.
    assert m.increase(samples, 0.0, 60.0) == pytest.approx(35.0)


def test_no_traffic_window_is_no_data_not_nan() -> None:
    flat = [(float(t), 5.0) for t in range(10)]
    assert m.window_error_ratio([flat], [flat], 9.0, 5.0) is None


def test_alert_tracker_for_and_keep_firing() -> None:
    tr = m.AlertTracker(for_s=2, keep_s=3)
    got = [tr.step(float(t), c) for t, c in enumerate([True, True, True, False, False, False, False])]
    assert got == ["pending", "pending", "firing", "firing", "firing", "firing", "inactive"]
    pending = m.AlertTracker(for_s=5)
    assert [pending.step(0, True), pending.step(1, False)] == ["pending", "inactive"]


def test_bad_duration_is_refused() -> None:
    with pytest.raises(ValueError):
        m.duration_seconds("5 minutes")
