from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, func, select

from lightkeeper.server.config import ServerConfig
from lightkeeper.server.cost.ingest import apply_retention
from lightkeeper.server.http.app import create_app
from lightkeeper.server.store.tables import llm_daily, llm_events, metadata
from tests.server.cost.conftest import event

ADMIN = {"Authorization": "Bearer admin-secret"}
INGEST = {"Authorization": "Bearer ingest-secret"}


def client(store: Engine) -> TestClient:
    config = ServerConfig(admin_token=SecretStr("admin-secret"))
    app = create_app(config, store, clock=lambda: datetime(2026, 11, 20, tzinfo=UTC), instrument=False)
    import lightkeeper.server.http.cost_routes as routes

    # the ingest token comes from the environment; build a second router with it set
    app.include_router(
        routes.router(
            config,
            store,
            lambda: datetime(2026, 11, 20, tzinfo=UTC),
            {routes.ENV_INGEST_TOKEN: "ingest-secret"},
        ),
        prefix="/t",
    )
    return TestClient(app)


def daily(store: Engine) -> list[Any]:
    with store.connect() as conn:
        return list(conn.execute(select(llm_daily).order_by(llm_daily.c.day, llm_daily.c.model)).all())


def test_the_revision_matches_the_tables(store: Engine) -> None:
    with store.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d for d in diff if "llm_" in repr(d)] == []


def test_a_retried_batch_is_counted_once_in_events_and_roll_up(store: Engine) -> None:
    http = client(store)
    batch = {"events": [event(n) for n in range(10)]}
    first = http.post("/api/llm/events", json=batch, headers=ADMIN)
    assert first.json() == {"received": 10, "stored": 10, "duplicates": 0}
    again = http.post("/api/llm/events", json={"events": [*batch["events"], event(10)]}, headers=ADMIN)
    assert again.json() == {"received": 11, "stored": 1, "duplicates": 10}
    (row,) = daily(store)
    assert (row.day, row.model, row.workspace_id, row.calls, row.input_tokens) == (
        "2026-11-03",
        "gpt-4o",
        "acme",
        11,
        11000,
    )
    assert row.cost_usd == pytest.approx(5.5)
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(llm_events)).scalar_one() == 11


def test_duplicates_inside_one_batch_count_once(store: Engine) -> None:
    response = client(store).post("/api/llm/events", json={"events": [event(1), event(1)]}, headers=ADMIN)
    assert response.json()["stored"] == 1
    assert daily(store)[0].calls == 1


def test_roll_up_keeps_errors_unpriced_and_days_apart(store: Engine) -> None:
    events = [
        event(1, status="error", cost_usd=0.0),
        event(2, cost_usd=None, model="mystery-model"),
        event(3, timestamp="2026-11-04T23:59:59+00:00", workspace_id=None),
    ]
    assert client(store).post("/api/llm/events", json={"events": events}, headers=ADMIN).status_code == 200
    rows = daily(store)
    assert [(r.day, r.model, r.workspace_id, r.calls, r.errors, r.unpriced) for r in rows] == [
        ("2026-11-03", "gpt-4o", "acme", 1, 1, 0),
        ("2026-11-03", "mystery-model", "acme", 1, 0, 1),
        ("2026-11-04", "gpt-4o", "", 1, 0, 0),
    ]


def test_ingest_needs_a_token(store: Engine) -> None:
    http = client(store)
    batch = {"events": [event(1)]}
    assert http.post("/api/llm/events", json=batch).status_code == 401
    assert (
        http.post("/api/llm/events", json=batch, headers={"Authorization": "Bearer nope"}).status_code == 401
    )
    assert http.post("/api/llm/events", json=batch, headers=INGEST).status_code == 401  # no ingest token set
    assert http.post("/t/api/llm/events", json=batch, headers=INGEST).status_code == 200
    assert (
        http.post("/t/api/llm/events", json=batch, headers={"Authorization": "Bearer nope"}).status_code
        == 401
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"user_hash": "alice@example.com"}, "user_hash"),
        ({"user_hash": "alice"}, "user_hash"),
        ({"input_tokens": -1}, "input_tokens"),
        ({"timestamp": "2026-11-03T10:00:00"}, "timestamp"),
        ({"model": ""}, "model"),
        ({"event_id": "x"}, "event_id"),
        ({"cost_usd": -0.01}, "cost_usd"),
    ],
)
def test_bad_events_are_422_with_the_field_and_without_the_value(
    store: Engine, change: dict[str, Any], field: str
) -> None:
    response = client(store).post("/t/api/llm/events", json={"events": [event(1, **change)]}, headers=INGEST)
    assert response.status_code == 422
    assert field in {str(p) for e in response.json()["detail"] for p in e["loc"]}
    assert "alice" not in response.text
    assert daily(store) == []


def test_batch_size_and_shape_are_bounded(store: Engine) -> None:
    http = client(store)
    assert http.post("/api/llm/events", json={"events": []}, headers=ADMIN).status_code == 422
    too_many = {"events": [event(n) for n in range(1001)]}
    assert http.post("/api/llm/events", json=too_many, headers=ADMIN).status_code in (413, 422)
    full = {"events": [event(n) for n in range(1000)]}
    assert http.post("/api/llm/events", json=full, headers=ADMIN).json()["stored"] == 1000
    assert http.post("/api/llm/events", content=b"{not json", headers=ADMIN).status_code == 422


def test_retention_deletes_raw_events_and_keeps_the_roll_up(store: Engine) -> None:
    client(store).post(
        "/api/llm/events",
        json={"events": [event(1), event(2, timestamp="2026-11-19T00:00:00Z")]},
        headers=ADMIN,
    )
    assert apply_retention(store, datetime(2026, 11, 20, tzinfo=UTC), retention_days=7) == 1
    with store.connect() as conn:
        assert conn.execute(select(llm_events.c.event_id)).scalars().all() == ["evt0000000002"]
    assert sum(r.calls for r in daily(store)) == 2


def test_summary_and_cost_page_need_the_admin_token_and_show_the_spend(store: Engine) -> None:
    http = client(store)
    http.post("/api/llm/events", json={"events": [event(1, cost_usd=7.25)]}, headers=ADMIN)
    assert http.get("/api/cost/summary").status_code == 401
    assert http.get("/cost").status_code == 401
    assert http.get("/api/cost/summary?from=2026-11-05&to=2026-11-01", headers=ADMIN).status_code == 422
    summary = http.get("/api/cost/summary?from=2026-11-01&to=2026-11-20&group_by=operation", headers=ADMIN)
    assert summary.json()["breakdown"][0]["key"] == "summarise"
    page = http.get("/cost?from=2026-11-01&to=2026-11-20", headers=ADMIN)
    assert page.status_code == 200
    assert "$7.25" in page.text and "<svg" in page.text and "gpt-4o" in page.text
