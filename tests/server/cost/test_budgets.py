from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import Engine, select

from lightkeeper.server.cost import budgets
from lightkeeper.server.cost.ingest import store_events
from lightkeeper.server.cost.schema import CostEventIn
from lightkeeper.server.store.tables import outbox
from lightkeeper.spec.models import Budgets
from tests.server.cost.conftest import event

SPEC = Budgets(llm_monthly_usd=100, llm_operations_usd={"summarise": 10}, llm_workspace_default_usd=50)
NOV = datetime(2026, 11, 20, tzinfo=UTC)


def _spend(store: Engine, first: int, cost: float, when: str = "2026-11-03T10:00:00Z") -> None:
    store_events(store, [CostEventIn.model_validate(event(first, cost_usd=cost, timestamp=when))])


def test_each_threshold_fires_once_per_period_and_again_next_period(store: Engine) -> None:
    _spend(store, 1, 8.0)  # summarise 80 %, workspace acme 16 %, global 8 %
    assert budgets.check(store, SPEC, NOV) == [
        "budget:operation:summarise:2026-11:50",
        "budget:operation:summarise:2026-11:75",
    ]
    assert budgets.check(store, SPEC, NOV) == []  # a second check sends nothing again
    _spend(store, 2, 30.0)  # summarise 380 %, acme 76 %, global 38 %
    assert budgets.check(store, SPEC, NOV) == [
        "budget:operation:summarise:2026-11:90",
        "budget:operation:summarise:2026-11:100",
        "budget:workspace:acme:2026-11:50",
        "budget:workspace:acme:2026-11:75",
    ]
    _spend(store, 3, 6.0, "2026-12-01T00:00:00Z")
    december = budgets.check(store, SPEC, datetime(2026, 12, 1, 1, tzinfo=UTC))
    assert december == ["budget:operation:summarise:2026-12:50"]
    with store.connect() as conn:
        rows = conn.execute(
            select(outbox.c.dedupe_key, outbox.c.kind, outbox.c.payload).order_by(outbox.c.id)
        ).all()
    assert len(rows) == 7
    # labelled alerts, fanned out like SLO alerts: one row per key, nothing else written
    assert {r.kind for r in rows} == {"slo_alert"}
    payloads = {r.dedupe_key: r.payload for r in rows}
    assert payloads["budget:operation:summarise:2026-11:100"] == {
        "status": "firing",
        "slo": "budget:operation:summarise",
        "tier": "2026-11:100",
        "labels": {
            "alertname": "LLMBudgetThreshold",
            "category": "cost",
            "operation": "summarise",
            "period": "2026-11",
            "scope": "operation",
            "service": "lightkeeper",
            "severity": "high",
            "threshold": "100",
        },
        "annotations": {
            "summary": "LLM spend 2026-11 reached 100% of the operation:summarise budget",
            "description": (
                "LLM spend 2026-11 reached 100% of the operation:summarise budget: $38.00 of $10.00"
            ),
            "spent_usd": "38.00",
            "budget_usd": "10.00",
        },
        "started_at": "2026-11-20T00:00:00+00:00",
        "resolved_at": None,
        "ends_at": "2026-12-01T00:00:00+00:00",  # the month's end: Alertmanager's endsAt
    }
    # the spend when the check ran, not when the threshold was first crossed
    assert payloads["budget:operation:summarise:2026-11:50"]["annotations"]["spent_usd"] == "8.00"
    acme = payloads["budget:workspace:acme:2026-11:75"]
    assert (acme["slo"], acme["tier"]) == ("budget:workspace:acme", "2026-11:75")
    assert acme["labels"] == {
        "alertname": "LLMBudgetThreshold",
        "category": "cost",
        "period": "2026-11",
        "scope": "workspace",
        "service": "lightkeeper",
        "severity": "medium",
        "threshold": "75",
        "workspace": "acme",
    }
    assert (acme["annotations"]["spent_usd"], acme["annotations"]["budget_usd"]) == ("38.00", "50.00")
    assert acme["ends_at"] == "2026-12-01T00:00:00+00:00"
    # every threshold below 100 % warns; the December alert ends with the year
    severities = {k.rsplit(":", 1)[1]: p["labels"]["severity"] for k, p in payloads.items()}
    assert severities == {"50": "medium", "75": "medium", "90": "medium", "100": "high"}
    dec = payloads["budget:operation:summarise:2026-12:50"]
    assert (dec["labels"]["period"], dec["tier"]) == ("2026-12", "2026-12:50")
    assert dec["ends_at"] == "2027-01-01T00:00:00+00:00"
    assert dec["annotations"]["spent_usd"] == "6.00"


def test_a_workspace_check_on_the_last_evening_ends_at_midnight_utc(store: Engine) -> None:
    """`now` in another zone still names the UTC month, and the alert ends at the next UTC midnight."""
    _spend(store, 1, 30.0, "2026-11-30T20:00:00Z")  # acme 60 % of the default $50
    evening = datetime(2026, 11, 30, 23, 30, tzinfo=timezone(timedelta(hours=-5)))  # 04:30Z on Dec 1
    assert budgets.check(store, SPEC, evening) == []  # December in UTC: November's spend does not count
    late = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)
    assert "budget:workspace:acme:2026-11:50" in budgets.check(store, SPEC, late)
    with store.connect() as conn:
        payload = conn.execute(
            select(outbox.c.payload).where(outbox.c.dedupe_key == "budget:workspace:acme:2026-11:50")
        ).scalar_one()
    assert payload["ends_at"] == "2026-12-01T00:00:00+00:00"
    assert payload["labels"]["period"] == "2026-11"


def test_no_budgets_no_alerts(store: Engine) -> None:
    _spend(store, 1, 1000.0)
    assert budgets.check(store, Budgets(), NOV) == []


def test_budget_fields_are_validated() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Budgets(llm_operations_usd={"x": 0})
    with pytest.raises(ValidationError):
        Budgets(llm_alert_percents=[0])
