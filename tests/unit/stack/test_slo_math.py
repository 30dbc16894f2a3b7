"""Burn-rate math: factors from budget share for any period, clean decimals, refusals."""

from __future__ import annotations

from decimal import Decimal

import pytest

from lightkeeper.spec.models import SLO
from lightkeeper.stack import promql, rules
from lightkeeper.stack import slo as slo_math
from lightkeeper.stack.errors import GenerationError
from tests.unit.stack._specs import issue_spec, with_slo


def _slo(**fields: object) -> SLO:
    data = {"name": "availability", "objective": 99.9, "period": "30d", "sli": {"kind": "availability"}}
    data.update(fields)
    return SLO.model_validate(data)


def _factors(slo: SLO) -> list[str]:
    return [promql.number(t.factor) for t in slo_math.resolve_tiers(slo)]


def test_thirty_days_gives_the_workbook_factors() -> None:
    assert _factors(_slo()) == ["14.4", "6", "3", "1"]


@pytest.mark.parametrize(
    ("period", "factors"),
    [
        ("28d", ["13.44", "5.6", "2.8", "0.9333"]),
        ("90d", ["43.2", "18", "9", "3"]),
        ("7d", ["3.36", "1.4", "0.7", "0.2333"]),
    ],
)
def test_factors_follow_the_period(period: str, factors: list[str]) -> None:
    assert _factors(_slo(period=period)) == factors


def test_calendar_month_counts_as_thirty_days_nominal() -> None:
    assert slo_math.period_seconds("calendar_month") == 30 * 86400
    assert _factors(_slo(period="calendar_month")) == _factors(_slo(period="30d"))
    assert slo_math.period_window("calendar_month") == "30d"


def test_thresholds_are_exact_decimals() -> None:
    tiers = slo_math.resolve_tiers(_slo())
    assert [promql.number(t.threshold) for t in tiers] == ["0.0144", "0.006", "0.003", "0.001"]
    assert slo_math.error_budget(99.9) == Decimal("0.001")
    assert slo_math.error_budget(99.95) == Decimal("0.0005")
    # float arithmetic would give 0.014400000000000001 and 0.0009999999999999432
    assert 14.4 * (1 - 0.999) != 0.0144


def test_rendered_rules_carry_no_float_artefacts() -> None:
    spec = issue_spec()
    text = "\n".join(a.expr for a in rules.all_alerts(spec))
    assert "0.0144" in text
    assert "00000000" not in text and "99999999" not in text


def test_a_tier_that_can_never_fire_is_refused() -> None:
    with pytest.raises(GenerationError, match=r"never fire its 'page-fast' tier.*14\.4.*>= 1"):
        slo_math.resolve_tiers(_slo(objective=90))


def test_dropping_page_tiers_lets_a_loose_slo_through() -> None:
    tiers = slo_math.resolve_tiers(_slo(objective=90, alerting={"page": False}))
    assert [t.name for t in tiers] == ["ticket-fast", "ticket-slow"]


def test_custom_tiers_are_data() -> None:
    slo = _slo(
        alerting={
            "tiers": [
                {
                    "name": "fast",
                    "long_window": "2h",
                    "short_window": "10m",
                    "budget_share": 0.05,
                    "severity": "high",
                    "for": "5m",
                }
            ]
        }
    )
    (tier,) = slo_math.resolve_tiers(slo)
    assert (promql.number(tier.factor), promql.number(tier.threshold), tier.for_) == ("18", "0.018", "5m")


def test_short_window_must_be_shorter() -> None:
    slo = _slo(
        alerting={
            "tiers": [
                {
                    "name": "x",
                    "long_window": "1h",
                    "short_window": "1h",
                    "budget_share": 0.02,
                    "severity": "critical",
                }
            ]
        }
    )
    with pytest.raises(GenerationError, match="must be shorter"):
        slo_math.resolve_tiers(slo)


def test_latency_threshold_must_be_a_bucket_boundary() -> None:
    spec = with_slo("{name: slow, objective: 99, sli: {kind: latency, threshold_seconds: 0.4}}")
    with pytest.raises(GenerationError, match=r"0\.4s is not a bucket boundary.*0\.3, 0\.5"):
        rules.all_alerts(spec)


@pytest.mark.parametrize(("bound", "label"), [(0.5, "0.5"), (1.0, "1.0"), (10.0, "10.0"), (0.025, "0.025")])
def test_le_labels_match_prometheus_client(bound: float, label: str) -> None:
    assert promql.le_label(bound) == label


def test_latency_sli_reads_the_exact_bucket() -> None:
    spec = with_slo("{name: fast, objective: 99, sli: {kind: latency, threshold_seconds: 1}}")
    exprs = [r.expr for r in rules.all_records(spec)]
    assert any('le="1.0"' in e for e in exprs)


def test_windows_longer_than_retention_are_refused() -> None:
    spec = with_slo("{name: quarter, objective: 99.9, period: 90d, sli: {kind: availability}}")
    with pytest.raises(GenerationError, match=r"needs 90d of history but prometheus\.retention is 30d"):
        rules.all_alerts(spec)
    ok = with_slo(
        "{name: quarter, objective: 99.9, period: 90d, sli: {kind: availability}}",
        "prometheus: {retention: 90d}",
    )
    assert rules.all_alerts(ok)


def test_long_windows_weight_by_request_count() -> None:
    """Each window's ratio is summed bad / summed total events, never an average of ratios.

    Windows of a day and more add up the 5-minute counts on the 5m grid (issue 15)."""
    spec = issue_spec()
    records = {r.record: r.expr for r in rules.all_records(spec) if r.labels.get("slo") == "availability"}
    three_days = records["slo:sli_error:ratio_rate3d"]
    assert "avg_over_time" not in three_days
    assert three_days.count("[2d23h59m59s999ms:5m]") == 3 and "http_requests_total" not in three_days
    numerator, total = three_days.split("\n/\n")
    assert "slo:sli_good:increase5m" in numerator and "slo:sli_good" not in total
    counts = records["slo:sli_good:increase5m"]
    assert 'status_code=~"5.."' in counts and "increase(http_requests_total{" in counts
    one_hour = records["slo:sli_error:ratio_rate1h"]
    assert one_hour.count("[1h]") == 3 and "rate(http_requests_total{" in one_hour
