from __future__ import annotations

from datetime import UTC, datetime

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
        rows = conn.execute(select(outbox.c.dedupe_key, outbox.c.payload).order_by(outbox.c.id)).all()
    assert len(rows) == 7
    full = next(r.payload for r in rows if r.dedupe_key.endswith(":summarise:2026-11:100"))
    assert full["severity"] == "high"
    assert "reached 100% of the operation:summarise budget: $38.00 of $10.00" in full["cause"]


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
