"""`/api/deployments`: auth, validation, idempotent retries, metrics and DORA numbers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import Engine

from lightkeeper.server.config import ServerConfig
from lightkeeper.server.http.app import create_app
from lightkeeper.spec.server import ServerSection
from tests.server.deploys.conftest import ADMIN, TOKEN

NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    config = ServerConfig(admin_token=SecretStr(TOKEN), server=ServerSection())
    with TestClient(create_app(config, engine, clock=lambda: NOW, instrument=False)) as made:
        yield made


def _report(client: TestClient, **body: Any) -> Any:
    payload = {"env": "prod", "component": "api", "version": "1.4.2", **body}
    for key in ("at", "commit_time"):
        if isinstance(payload.get(key), datetime):
            payload[key] = payload[key].isoformat()
    return client.post("/api/deployments", json=payload, headers=ADMIN)


def _samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every deployment sample the process's registry exposes, keyed by name and labels."""
    out = {}
    for family in text_string_to_metric_families(generate_latest(REGISTRY).decode()):
        for s in family.samples:
            if s.name.startswith("deployment"):
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_writes_need_the_admin_token_even_with_a_bad_body(client: TestClient) -> None:
    good = {"event": "start", "env": "prod", "component": "api", "version": "1"}
    assert client.post("/api/deployments", json=good).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert client.post("/api/deployments", json=good, headers=wrong).status_code == 401
    assert client.post("/api/deployments", json={"event": "nope"}).status_code == 401
    assert client.get("/api/deployments").json() == []  # nothing was recorded


@pytest.mark.parametrize(
    "body",
    [
        {"event": "start", "env": "Prod Env", "component": "api", "version": "1"},  # not a label-safe name
        {"event": "start", "env": "prod", "component": "a" * 70, "version": "1"},
        {"event": "start", "env": "prod", "component": "api", "version": "1 2"},
        {"event": "start", "env": "prod", "component": "api", "version": "1", "status": "success"},
        {"event": "finish", "env": "prod", "component": "api", "version": "1"},  # no status
        {"event": "finish", "env": "prod", "component": "api", "version": "1", "status": "cancelled"},
        {
            "event": "start",
            "env": "prod",
            "component": "api",
            "version": "1",
            "commit_time": "2026-12-01T10:00",
        },
        {"event": "start", "env": "prod", "component": "api", "version": "1", "extra": 1},
        {"event": "start", "env": "prod", "component": "api"},
    ],
)
def test_invalid_reports_are_422_and_record_nothing(client: TestClient, body: dict[str, Any]) -> None:
    response = client.post("/api/deployments", json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert client.get("/api/deployments").json() == []


def test_a_commit_after_the_start_is_422(client: TestClient) -> None:
    response = _report(client, event="start", at=NOW, commit_time=NOW + timedelta(minutes=1))
    assert response.status_code == 422 and "commit time" in response.text


def test_retries_are_idempotent_and_a_contradiction_is_409(client: TestClient) -> None:
    first = _report(client, event="start", at=NOW - timedelta(minutes=5))
    assert first.status_code == 201 and first.json()["recorded"] is True
    retry = _report(client, event="start")
    assert retry.status_code == 200 and retry.json()["recorded"] is False
    assert retry.json()["started_at"] == "2026-12-10T11:55:00Z"
    done = _report(client, event="finish", status="success")
    assert done.status_code == 201 and done.json()["duration_seconds"] == 300.0
    assert _report(client, event="finish", status="success").status_code == 200
    conflict = _report(client, event="finish", status="failure")
    assert conflict.status_code == 409
    listed = client.get("/api/deployments", params={"env": "prod"}).json()
    assert [(d["id"], d["status"]) for d in listed] == [("prod/api/1.4.2", "success")]


def test_metrics_follow_a_deployment_from_start_to_finish(client: TestClient) -> None:
    commit = NOW - timedelta(hours=1)
    _report(client, event="start", at=NOW - timedelta(seconds=90), commit_time=commit)
    running = _samples()
    in_progress = ("deployments_in_progress", (("component", "api"), ("env", "prod")))
    assert running[in_progress] == 1.0
    assert not any(name == "deployments_total" for name, _ in running)

    _report(client, event="finish", status="success")
    _report(client, event="finish", status="success")  # a retry counts once
    done = _samples()
    labels = (("component", "api"), ("env", "prod"))
    assert done[in_progress] == 0.0
    assert done[("deployments_total", (*labels[:1], ("env", "prod"), ("status", "success")))] == 1.0
    assert done[("deployment_duration_seconds_sum", labels)] == 90.0
    assert done[("deployment_duration_seconds_bucket", (*labels, ("le", "60.0")))] == 0.0
    assert done[("deployment_duration_seconds_bucket", (*labels, ("le", "120.0")))] == 1.0
    assert done[("deployment_lead_time_seconds_sum", labels)] == 3600.0
    assert done[("deployment_lead_time_seconds_count", labels)] == 1.0


def test_dora_numbers_on_a_constructed_set(client: TestClient) -> None:
    day = timedelta(days=1)
    # in the 30-day window: 6 successes, 2 failures, 1 rollback + one still running
    for i in range(6):
        finished = NOW - (i + 1) * day
        _report(client, event="start", version=f"s{i}", at=finished - timedelta(minutes=10))
        _report(
            client,
            event="finish",
            version=f"s{i}",
            status="success",
            at=finished,
            commit_time=finished - timedelta(hours=i + 1),  # lead times 1 h .. 6 h
        )
    for i, outcome in enumerate(["failure", "failure", "rolled_back"]):
        _report(client, event="finish", version=f"f{i}", status=outcome, at=NOW - (i + 1) * day)
    _report(client, event="start", version="running", at=NOW - timedelta(minutes=1))
    # outside the window, or another environment: not counted
    _report(client, event="finish", version="old", status="failure", at=NOW - 31 * day)
    _report(client, event="finish", env="staging", version="s", status="failure", at=NOW - day)

    numbers = client.get("/api/deployments/dora", params={"env": "prod", "days": 30}).json()
    assert numbers["deployments"] == 9
    assert numbers["by_status"] == {"success": 6, "failure": 2, "rolled_back": 1}
    assert numbers["frequency_per_day"] == pytest.approx(6 / 30)
    assert numbers["finished_per_day"] == pytest.approx(9 / 30)
    assert numbers["change_failure_rate"] == pytest.approx(3 / 9)
    assert numbers["rollback_rate"] == pytest.approx(1 / 9)
    assert numbers["median_lead_time_seconds"] == pytest.approx(3.5 * 3600 + 0)
    assert numbers["median_duration_seconds"] == 600.0
    assert numbers["from"] == "2026-11-10T12:00:00Z" and numbers["to"] == "2026-12-10T12:00:00Z"


def test_dora_with_nothing_finished_has_no_rates(client: TestClient) -> None:
    numbers = client.get("/api/deployments/dora", params={"days": 7}).json()
    assert numbers["deployments"] == 0 and numbers["frequency_per_day"] == 0.0
    assert numbers["change_failure_rate"] is None and numbers["median_lead_time_seconds"] is None
    assert client.get("/api/deployments/dora", params={"days": 0}).status_code == 422
    assert client.get("/api/deployments/dora", params={"days": 401}).status_code == 422


def test_reads_of_a_private_server_need_the_token(engine: Engine) -> None:
    config = ServerConfig(admin_token=SecretStr(TOKEN), server=ServerSection(public=False))
    with TestClient(create_app(config, engine, clock=lambda: NOW, instrument=False)) as private:
        assert private.get("/api/deployments").status_code == 401
        assert private.get("/api/deployments/dora").status_code == 401
        assert private.get("/api/deployments", headers=ADMIN).status_code == 200
