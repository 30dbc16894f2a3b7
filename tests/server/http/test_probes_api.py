"""`/api/probes` and the admin probe API: contract fields, auth, and bad input as 4xx."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from lightkeeper.server.http import auth
from tests.server.http import seed
from tests.server.http.conftest import ADMIN, NOW, Harness

HTTP_PROBE = {"name": "api", "type": "http", "target": "http://127.0.0.1:9/health", "component": "API"}


def test_lists_probes_with_state_and_contract_fields(harness: Harness) -> None:
    seed.probe(harness.engine, "api", component="API")
    seed.probe(harness.engine, "db", kind="tcp", target="127.0.0.1:5432")
    seed.state(
        harness.engine, "api", "up", at=NOW - timedelta(seconds=30), latency_ms=12.5, error="old error"
    )
    seed.state(harness.engine, "db", "down", at=NOW, error="connection refused")
    body = harness.make().get("/api/probes").json()
    assert body == [
        {
            "name": "api",
            "type": "http",
            "component": "API",
            "interval_seconds": 60,
            "state": "up",
            "last_checked_at": "2026-11-20T11:59:30Z",
            "last_latency_ms": 12.5,
            "last_error": None,
            "ping_url": None,
        },
        {
            "name": "db",
            "type": "tcp",
            "component": "db",
            "interval_seconds": 60,
            "state": "down",
            "last_checked_at": "2026-11-20T12:00:00Z",
            "last_latency_ms": None,
            "last_error": "connection refused",
            "ping_url": None,
        },
    ]


def test_a_new_probe_is_unknown_until_it_runs(client: TestClient) -> None:
    created = client.post("/api/probes", json=HTTP_PROBE, headers=ADMIN)
    assert created.status_code == 201
    assert created.json()["state"] == "unknown"
    assert created.json()["last_checked_at"] is None
    assert [p["name"] for p in client.get("/api/probes").json()] == ["api"]


def test_heartbeat_probes_carry_a_ping_url_that_records_pings(client: TestClient) -> None:
    beat = {"name": "nightly", "type": "heartbeat", "cron": "0 2 * * *", "timezone": "Europe/Berlin"}
    assert client.post("/api/probes", json=beat, headers=ADMIN).status_code == 201
    url = client.get("/api/probes").json()[0]["ping_url"]
    assert url.startswith("http://testserver/ping/")
    path = url.removeprefix("http://testserver")
    assert client.post(path).json()["kind"] == "success"
    assert client.post(path + "/start").json()["kind"] == "start"
    assert client.post(path + "/fail").json()["kind"] == "fail"
    assert client.post(path + "/0").json() | {"at": None} == {
        "probe": "nightly",
        "kind": "success",
        "exit_code": 0,
        "at": None,
    }
    assert client.post(path + "/3").json()["kind"] == "fail"
    assert client.post(path + "/256").status_code == 422
    assert client.post("/ping/" + "0" * 32).status_code == 404
    assert client.post("/ping/nightly").status_code == 404


def test_put_replaces_and_delete_removes(client: TestClient) -> None:
    client.post("/api/probes", json=HTTP_PROBE, headers=ADMIN)
    changed = {**HTTP_PROBE, "interval_seconds": 30}
    replaced = client.put("/api/probes/api", json=changed, headers=ADMIN)
    assert replaced.status_code == 200
    assert replaced.json()["interval_seconds"] == 30
    assert client.delete("/api/probes/api", headers=ADMIN).status_code == 204
    assert client.get("/api/probes").json() == []
    assert client.delete("/api/probes/api", headers=ADMIN).status_code == 404
    assert client.put("/api/probes/api", json=changed, headers=ADMIN).status_code == 404
    # a deleted name can be used again
    assert client.post("/api/probes", json=HTTP_PROBE, headers=ADMIN).status_code == 201


def test_conflicts_are_409_with_a_reason(harness: Harness) -> None:
    seed.probe(harness.engine, "from-spec")
    client = harness.make()
    client.post("/api/probes", json=HTTP_PROBE, headers=ADMIN)
    again = client.post("/api/probes", json=HTTP_PROBE, headers=ADMIN)
    assert again.status_code == 409
    assert "PUT /api/probes/api" in again.json()["detail"]
    spec_owned = {**HTTP_PROBE, "name": "from-spec"}
    assert client.put("/api/probes/from-spec", json=spec_owned, headers=ADMIN).status_code == 409
    refused = client.delete("/api/probes/from-spec", headers=ADMIN)
    assert refused.status_code == 409
    assert "lightkeeper.yaml" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/probes"),
        ("put", "/api/probes/api"),
        ("delete", "/api/probes/api"),
        ("post", "/api/maintenance"),
        ("delete", "/api/maintenance/1"),
    ],
)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}],
)
def test_admin_routes_need_the_token(
    client: TestClient, method: str, path: str, headers: dict[str, str]
) -> None:
    response = client.request(method.upper(), path, json=HTTP_PROBE, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_malformed_json_without_a_token_is_still_401(client: TestClient) -> None:
    response = client.post("/api/probes", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "json_invalid"),
        (b"[]", "model_attributes_type"),
        (b'{"name": "x", "type": "smtp", "target": "a:1"}', "union_tag_invalid"),
        (b'{"name": "", "type": "tcp", "target": "a:1"}', "value_error"),
        (b'{"name": "x", "type": "tcp", "target": "a:1", "interval_seconds": -5}', "greater_than_equal"),
        # past any schedule a datetime can hold: refused, not a scheduler crash later
        (
            b'{"name": "x", "type": "tcp", "target": "a:1", "interval_seconds": 1099511627776}',
            "less_than_equal",
        ),
        (b'{"name": "x", "type": "tcp", "target": "a:1", "retries": 1099511627776}', "less_than_equal"),
        (b'{"name": "x", "type": "tcp", "target": "a:1", "surprise": 1}', "extra_forbidden"),
    ],
)
def test_bad_probe_bodies_are_422_with_a_reason(client: TestClient, body: bytes, reason: str) -> None:
    response = client.post("/api/probes", content=body, headers={**ADMIN, "Content-Type": "application/json"})
    assert response.status_code == 422
    assert reason in {e["type"] for e in response.json()["detail"]}
    assert all("input" not in e for e in response.json()["detail"])


def test_rejected_secret_header_is_not_echoed(client: TestClient) -> None:
    secret = "Bearer sk-live-abcdef0123456789"
    body = {**HTTP_PROBE, "headers": {"Authorization": secret}}
    response = client.post("/api/probes", json=body, headers=ADMIN)
    assert response.status_code == 422
    assert "sk-live" not in response.text


def test_oversize_fields_and_bodies_are_refused(client: TestClient) -> None:
    long_tag = {**HTTP_PROBE, "tags": ["x" * 5000]}
    response = client.post("/api/probes", json=long_tag, headers=ADMIN)
    assert response.status_code == 422
    assert "tags[0]" in response.json()["detail"]
    huge = {**HTTP_PROBE, "tags": ["y" * 1000] * 100}
    assert client.post("/api/probes", json=huge, headers=ADMIN).status_code == 413


def test_name_in_body_must_match_the_url(client: TestClient) -> None:
    client.post("/api/probes", json=HTTP_PROBE, headers=ADMIN)
    response = client.put("/api/probes/other", json=HTTP_PROBE, headers=ADMIN)
    assert response.status_code == 422
    assert "URL names 'other'" in response.json()["detail"]


def test_private_server_hides_reads_without_a_token(harness: Harness) -> None:
    client = harness.make(public=False)
    for path in ("/", "/api/probes", "/api/incidents", "/sla/uptime", "/sla/status", "/feed.json"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers=ADMIN).status_code == 200, path


def test_a_period_heartbeat_reads_back_after_storage(client: TestClient) -> None:
    # a dumped default `timezone` used to read back as an explicit choice the model refuses
    beat = {"name": "hourly", "type": "heartbeat", "period_seconds": 3600}
    assert client.post("/api/probes", json=beat, headers=ADMIN).status_code == 201
    [listed] = client.get("/api/probes").json()
    assert listed["name"] == "hourly" and listed["ping_url"]


def test_unparsable_bodies_and_huge_ids_are_4xx(client: TestClient) -> None:
    # found by the schemathesis fuzz: an id past 64 bits and a body FastAPI cannot parse
    assert client.delete(f"/api/maintenance/{2**63}", headers=ADMIN).status_code == 422
    assert client.delete("/api/maintenance/0", headers=ADMIN).status_code == 422
    # bytes that are not UTF-8: FastAPI answers 400 before any dependency checks the token
    json_type = {"Content-Type": "application/json"}
    assert client.post("/api/maintenance", content=b"\x80{}", headers=json_type).status_code == 401
    assert (
        client.post("/api/maintenance", content=b"\x80{}", headers={**ADMIN, **json_type}).status_code == 400
    )


def test_a_non_ascii_ping_token_is_404(harness: Harness) -> None:
    # found by the schemathesis fuzz: a token of the right length with a non-ASCII
    # character made hmac.compare_digest raise (it compares str only when ASCII)
    seed.probe(harness.engine, "beat", kind="heartbeat")
    token = "0" * (auth.PING_TOKEN_CHARS - 1) + "\u0080"
    assert harness.make().post(f"/ping/{token}").status_code == 404
