from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine

from lightkeeper.server.cost import anomaly, forecast, recommend, summary
from lightkeeper.server.cost.ingest import store_events
from lightkeeper.server.cost.schema import CostEventIn
from tests.server.cost.conftest import event

TODAY = date(2026, 11, 16)


def test_forecast_of_a_linear_series_is_exact_with_a_zero_width_interval() -> None:
    # day d of November costs d dollars: 1..15 spent (120), 16..30 predicted (345)
    daily = {date(2026, 11, d): float(d) for d in range(1, 16)} | {date(2026, 10, 31): 0.0}
    result = forecast.month_end(daily, TODAY, window=14)
    assert result.month_to_date_usd == 120.0
    assert result.forecast_usd == pytest.approx(465.0)
    assert (result.low_usd, result.high_usd) == pytest.approx((465.0, 465.0))


def test_forecast_interval_widens_with_scatter_and_never_drops_below_spent() -> None:
    daily = {date(2026, 11, d): 10.0 + (3 if d % 2 else -3) for d in range(1, 16)}
    result = forecast.month_end(daily, TODAY, window=14)
    assert result.forecast_usd == pytest.approx(result.month_to_date_usd + 15 * 10, rel=0.1)
    assert result.low_usd < result.forecast_usd < result.high_usd
    assert result.low_usd >= result.month_to_date_usd


def test_forecast_without_history_uses_what_there_is() -> None:
    result = forecast.month_end({date(2026, 11, 15): 4.0}, TODAY)
    assert result.forecast_usd == 4.0 + 15 * 4.0
    assert result.method.startswith("median day")


def _flat(cost: float, days: int = 28) -> dict[date, float]:
    return {TODAY - timedelta(days=n): cost + (0.1 if n % 2 else -0.1) for n in range(1, days + 1)}


def test_a_spike_is_found_and_blamed_on_the_model_and_operation_that_caused_it() -> None:
    groups = {
        ("gpt-4o", "summarise"): _flat(10.0),
        ("gpt-4o-mini", "classify"): _flat(5.0) | {TODAY: 45.0},
        ("claude-sonnet-4-5", "chat"): _flat(8.0) | {TODAY: 8.0},
    }
    groups[("gpt-4o", "summarise")][TODAY] = 10.0
    (found,) = anomaly.detect(groups, [TODAY - timedelta(days=1), TODAY])
    assert (found.day, found.model, found.operation) == (TODAY, "gpt-4o-mini", "classify")
    assert found.driver_increase_usd == pytest.approx(40.0, abs=0.2)
    assert found.z > anomaly.THRESHOLD
    assert "classify on gpt-4o-mini" in found.explanation


def test_ordinary_days_and_a_short_history_raise_nothing() -> None:
    assert anomaly.detect({("m", "o"): _flat(10.0) | {TODAY: 11.0}}, [TODAY]) == []
    young = {("m", "o"): {TODAY - timedelta(days=2): 1.0, TODAY: 100.0}}
    assert anomaly.detect(young, [TODAY]) == []


def _ingest(store: Engine, events: list[dict[str, object]]) -> None:
    store_events(store, [CostEventIn.model_validate(e) for e in events])


def test_summary_group_bys_and_cost_per_active_user(store: Engine) -> None:
    _ingest(
        store,
        [
            event(1, cost_usd=1.0, user_hash="a" * 32),
            event(
                2,
                cost_usd=2.0,
                user_hash="a" * 32,
                model="gpt-4o-mini",
                operation="classify",
                workspace_id="beta",
            ),
            event(3, cost_usd=3.0, user_hash="b" * 32, timestamp="2026-11-05T00:00:00Z"),
            event(4, cost_usd=100.0, timestamp="2026-10-05T00:00:00Z"),  # outside the window
        ],
    )

    def keys(group_by: summary.GroupBy) -> list[tuple[object, float]]:
        out = summary.build(store, date(2026, 11, 1), date(2026, 11, 15), group_by, TODAY)
        return [(b["key"], b["cost_usd"]) for b in out["breakdown"]]

    assert keys("model") == [("gpt-4o", 4.0), ("gpt-4o-mini", 2.0)]
    assert keys("operation") == [("summarise", 4.0), ("classify", 2.0)]
    assert keys("workspace") == [("acme", 4.0), ("beta", 2.0)]
    assert keys("user") == [("a" * 32, 3.0), ("b" * 32, 3.0)]
    assert keys("day") == [("2026-11-03", 3.0), ("2026-11-05", 3.0)]
    out = summary.build(store, date(2026, 11, 1), date(2026, 11, 15), "model", TODAY)
    assert out["totals"]["cost_usd"] == 6.0 and out["totals"]["calls"] == 3
    assert (out["active_users"], out["cost_per_active_user_usd"]) == (2, 3.0)
    assert len(out["daily"]) == 15 and out["daily"][2] == {"day": "2026-11-03", "cost_usd": 3.0}


AT = datetime(2026, 11, 3, tzinfo=UTC)


def _rows(store: Engine) -> list[recommend.Recommendation]:
    return recommend.all_for(store, AT - timedelta(days=1), AT + timedelta(days=1))


def test_repeated_prompts_without_cache_reads_recommend_caching(store: Engine) -> None:
    same = "c" * 64
    _ingest(
        store,
        [event(n, prompt_hash=same if n < 8 else f"{n:064x}", operation="summarise") for n in range(10)]
        + [event(20 + n, prompt_hash=same, operation="cached", cache_read_tokens=900) for n in range(5)]
        + [event(40 + n, operation="nohash") for n in range(5)],
    )
    caching = [r for r in _rows(store) if r.kind == "caching"]
    assert [(r.operation, r.share) for r in caching] == [("summarise", 0.7)]


def test_spend_on_failures_and_retries_is_reported_as_a_share(store: Engine) -> None:
    _ingest(
        store,
        [
            event(1, cost_usd=6.0, request_id="r1"),
            event(2, cost_usd=2.0, request_id="r1"),  # a retry
            event(3, cost_usd=1.0, status="error", request_id="r2"),
            event(4, cost_usd=1.0, request_id="r3"),
        ],
    )
    (waste,) = [r for r in _rows(store) if r.kind == "waste"]
    assert waste.share == pytest.approx(0.3)
    assert waste.saving_usd == pytest.approx(3.0)


def test_a_cheaper_model_of_the_same_provider_is_named_with_its_saving(store: Engine) -> None:
    # gpt-4o at its real price: 1M input + 1M output tokens = $12.50; gpt-4.1-mini prices them at $2.00
    _ingest(store, [event(1, input_tokens=1_000_000, output_tokens=1_000_000, cost_usd=12.5)])
    (cheaper,) = [r for r in _rows(store) if r.kind == "cheaper_model"]
    assert (cheaper.operation, cheaper.model) == ("summarise", "gpt-4o")
    assert "gpt-4.1-mini" in cheaper.message
    assert cheaper.share == pytest.approx(0.84)
    assert cheaper.saving_usd == pytest.approx(10.5)


def test_no_cheaper_model_for_the_cheapest_or_an_unknown_provider(store: Engine) -> None:
    _ingest(
        store,
        [
            event(1, model="gpt-4.1-nano", cost_usd=0.0005),
            event(2, provider="acme-ai", model="x", cost_usd=9.0),
        ],
    )
    assert [r for r in _rows(store) if r.kind == "cheaper_model"] == []
