"""The example SaaS app, served by a real uvicorn and driven over HTTP.

Each test reads /metrics before and after its requests and checks the difference, so
tests sharing one server stay independent and every number is exact.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from examples.saas_app import db as example_db
from examples.saas_app.security import issue_token
from prometheus_client.parser import text_string_to_metric_families

from lightkeeper import catalogue
from lightkeeper.demo import traffic
from tests.support import services

pytestmark = pytest.mark.integration

APP = "examples.saas_app.main:app"
PASSWORD = example_db.DEMO_PASSWORD
ALICE, BOB, CAROL = (email for email, _, _ in example_db.DEMO_USERS)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(client: httpx.Client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(snapshot: Samples, name: str, **labels: str) -> float:
    return snapshot.get((name, frozenset(labels.items())), 0.0)


def usage_count(snapshot: Samples, event: str) -> float:
    """One event's count over all its declared label values (undeclared labels read empty)."""
    name = catalogue.USAGE_EVENTS.name
    return sum(v for (n, labels), v in snapshot.items() if n == name and dict(labels).get("event") == event)


def requests_delta(before: Samples, after: Samples, method: str, route: str, status: int) -> float:
    labels = {"method": method, "route": route, "status_code": str(status)}
    return value(after, catalogue.HTTP_REQUESTS.name, **labels) - value(
        before, catalogue.HTTP_REQUESTS.name, **labels
    )


def login(client: httpx.Client, email: str) -> dict[str, str]:
    response = client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Path]]:
    """One SQLite-backed app for the module; /api/flaky fails every time."""
    tmp = tmp_path_factory.mktemp("saas")
    env = {"SAAS_DATABASE_URL": f"sqlite:///{tmp / 'app.db'}", "SAAS_FLAKY_RATE": "1"}
    with (
        services.uvicorn_process(APP, env=env, log_path=tmp / "app.log") as (port, log_path),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=15.0) as client,
    ):
        _wait_ready(client)
        yield client, log_path


def _wait_ready(client: httpx.Client) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if client.get("/health/ready").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("the example app never became ready")


@pytest.fixture
def client(server: tuple[httpx.Client, Path]) -> httpx.Client:
    return server[0]


def test_demo_generator_uses_the_seeded_accounts() -> None:
    seeded = tuple(email for email, _, _ in example_db.DEMO_USERS)
    assert seeded == traffic.DEMO_EMAILS
    assert example_db.DEMO_PASSWORD == traffic.DEMO_PASSWORD


def test_login_success_and_failures(client: httpx.Client) -> None:
    before = samples(client)
    ok = client.post("/api/auth/login", json={"email": ALICE, "password": PASSWORD})
    assert ok.status_code == 200
    assert ok.json()["token_type"] == "bearer" and ok.json()["access_token"]
    assert client.post("/api/auth/login", json={"email": ALICE, "password": "wrong"}).status_code == 401
    assert (
        client.post("/api/auth/login", json={"email": "nobody@example.com", "password": "x"}).status_code
        == 401
    )
    assert client.post("/api/auth/login", json={"email": ALICE}).status_code == 422
    malformed = client.post(
        "/api/auth/login", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 422
    after = samples(client)

    route = "/api/auth/login"
    assert requests_delta(before, after, "POST", route, 200) == 1
    assert requests_delta(before, after, "POST", route, 401) == 2
    assert requests_delta(before, after, "POST", route, 422) == 2


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-token", "Basic YWxpY2U6ZGVtby1wYXNzd29yZA==", "Bearer eyJzdWIiOiAxfQ.AAAA"],
)
def test_api_rejects_missing_or_forged_tokens(client: httpx.Client, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/api/orgs", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_token_signed_with_another_key_is_rejected(client: httpx.Client) -> None:
    forged = issue_token(1, "some-other-secret")
    assert client.get("/api/orgs", headers={"Authorization": f"Bearer {forged}"}).status_code == 401


def test_organizations_and_workspaces(client: httpx.Client) -> None:
    alice, bob = login(client, ALICE), login(client, BOB)
    before = samples(client)

    orgs = client.get("/api/orgs", headers=alice).json()
    assert [o["name"] for o in orgs] == ["Acme Publishing"]
    acme = orgs[0]["id"]
    names = [w["name"] for w in client.get(f"/api/orgs/{acme}/workspaces", headers=alice).json()]
    assert names[:2] == ["Marketing", "Documentation"]

    created = client.post("/api/orgs", json={"name": "Bob's side project"}, headers=bob)
    assert created.status_code == 201
    side = created.json()["id"]
    workspace = client.post(f"/api/orgs/{side}/workspaces", json={"name": "Drafts"}, headers=bob)
    assert workspace.status_code == 201
    workspace_id = workspace.json()["id"]
    assert client.get(f"/api/workspaces/{workspace_id}", headers=bob).json()["name"] == "Drafts"

    # another tenant's rows answer 404, so their ids cannot be probed
    assert client.get(f"/api/orgs/{side}/workspaces", headers=alice).status_code == 404
    assert client.get(f"/api/workspaces/{workspace_id}", headers=alice).status_code == 404
    assert client.post("/api/orgs", json={"name": ""}, headers=bob).status_code == 422
    after = samples(client)

    assert requests_delta(before, after, "GET", "/api/orgs", 200) == 1
    assert requests_delta(before, after, "POST", "/api/orgs", 201) == 1
    assert requests_delta(before, after, "POST", "/api/orgs", 422) == 1
    assert requests_delta(before, after, "GET", "/api/orgs/{org_id}/workspaces", 200) == 1
    assert requests_delta(before, after, "GET", "/api/orgs/{org_id}/workspaces", 404) == 1
    assert requests_delta(before, after, "POST", "/api/orgs/{org_id}/workspaces", 201) == 1
    assert requests_delta(before, after, "GET", "/api/workspaces/{workspace_id}", 200) == 1
    assert requests_delta(before, after, "GET", "/api/workspaces/{workspace_id}", 404) == 1
    for event in ("organization_created", "workspace_created"):
        assert usage_count(after, event) - usage_count(before, event) == 1, event


def test_content_workflow_end_to_end(client: httpx.Client) -> None:
    alice, bob = login(client, ALICE), login(client, BOB)
    before = samples(client)

    created = client.post(
        "/api/workspaces/1/items", json={"title": "Launch post", "body": "Hello"}, headers=alice
    )
    assert created.status_code == 201
    item = created.json()
    assert item["status"] == "draft" and item["author_id"] == 1
    item_id = item["id"]
    path = f"/api/items/{item_id}"

    listed = client.get("/api/workspaces/1/items", params={"status": "draft"}, headers=bob).json()
    assert item_id in [row["id"] for row in listed]
    assert client.get("/api/workspaces/1/items", params={"status": "bogus"}, headers=bob).status_code == 422

    # draft cannot jump to review; it has to be processed first
    assert client.patch(path, json={"status": "review"}, headers=alice).status_code == 409
    assert client.patch(path, json={"status": "processing"}, headers=alice).json()["status"] == "processing"
    updated = client.patch(path, json={"status": "review", "title": "Launch post v2"}, headers=alice).json()
    assert (updated["status"], updated["title"]) == ("review", "Launch post v2")

    for text in ("Tighten the intro", "Looks good now"):
        assert client.post(f"{path}/comments", json={"body": text}, headers=bob).status_code == 201
    assert client.post(f"{path}/comments", json={"body": ""}, headers=bob).status_code == 422

    assert client.post(f"{path}/approve", headers=alice).status_code == 403  # own item
    assert client.post(f"{path}/publish", headers=bob).status_code == 409  # not approved yet
    assert client.post(f"{path}/approve", headers=bob).json()["status"] == "approved"
    assert client.post(f"{path}/publish", headers=bob).status_code == 202

    deadline = time.monotonic() + 5
    while client.get(path, headers=alice).json()["status"] != "published":
        assert time.monotonic() < deadline, "the background publish never ran"
        time.sleep(0.05)
    assert client.get("/api/items/987654", headers=alice).status_code == 404
    after = samples(client)

    expected = {
        ("POST", "/api/workspaces/{workspace_id}/items", 201): 1,
        ("GET", "/api/workspaces/{workspace_id}/items", 200): 1,
        ("GET", "/api/workspaces/{workspace_id}/items", 422): 1,
        ("PATCH", "/api/items/{item_id}", 409): 1,
        ("PATCH", "/api/items/{item_id}", 200): 2,
        ("POST", "/api/items/{item_id}/comments", 201): 2,
        ("POST", "/api/items/{item_id}/comments", 422): 1,
        ("POST", "/api/items/{item_id}/approve", 403): 1,
        ("POST", "/api/items/{item_id}/approve", 200): 1,
        ("POST", "/api/items/{item_id}/publish", 409): 1,
        ("POST", "/api/items/{item_id}/publish", 202): 1,
        ("GET", "/api/items/{item_id}", 404): 1,
    }
    for (method, route, status), count in expected.items():
        assert requests_delta(before, after, method, route, status) == count, (method, route, status)
    # never the raw path
    assert not [key for key in after if dict(key[1]).get("route", "").startswith(f"/api/items/{item_id}")]

    for event, count in [("content_item_created", 1), ("comment_added", 2), ("content_item_approved", 1),
                         ("content_item_published", 1)]:  # fmt: skip
        assert usage_count(after, event) - usage_count(before, event) == count, event
    # the demo tenants are on the team plan: the declared label value, not an empty one
    assert value(after, catalogue.USAGE_EVENTS.name, event="content_item_created", plan="team") >= 1


def test_streaming_export_delivers_every_chunk(client: httpx.Client) -> None:
    alice, bob = login(client, ALICE), login(client, BOB)
    item_id = client.post("/api/workspaces/1/items", json={"title": "Export me"}, headers=alice).json()["id"]
    comments = [f"comment {n}" for n in range(5)]
    for text in comments:
        client.post(f"/api/items/{item_id}/comments", json={"body": text}, headers=bob)
    before = samples(client)

    with client.stream("GET", f"/api/items/{item_id}/export", headers=alice) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        assert "content-length" not in response.headers  # sent in chunks, length unknown upfront
        rows = [json.loads(line) for line in response.iter_lines() if line]
    after = samples(client)

    assert [row["type"] for row in rows] == ["item", *["comment"] * 5, "end"]
    assert rows[0]["id"] == item_id
    assert [row["body"] for row in rows[1:-1]] == comments
    assert rows[-1] == {"type": "end", "rows": 6}

    route = "/api/items/{item_id}/export"
    assert requests_delta(before, after, "GET", route, 200) == 1
    ttfb = f"{catalogue.HTTP_TIME_TO_FIRST_BYTE.name}_count"
    duration = f"{catalogue.HTTP_REQUEST_DURATION.name}_sum"
    assert value(after, ttfb, method="GET", route=route) - value(before, ttfb, method="GET", route=route) == 1
    # six rows 10 ms apart: the recorded duration covers the stream, not just its first chunk
    spent = value(after, duration, method="GET", route=route) - value(
        before, duration, method="GET", route=route
    )
    assert spent >= 0.05


def test_flaky_endpoint_fails_when_the_rate_is_one(client: httpx.Client) -> None:
    alice = login(client, ALICE)
    before = samples(client)
    responses = [client.get("/api/flaky", headers=alice) for _ in range(3)]
    after = samples(client)

    assert [r.status_code for r in responses] == [500, 500, 500]
    assert all(r.headers.get("x-request-id") for r in responses)
    assert requests_delta(before, after, "GET", "/api/flaky", 500) == 3
    exceptions = catalogue.HTTP_EXCEPTIONS.name
    labels = {"route": "/api/flaky", "exception_type": "InventorySyncError"}
    assert value(after, exceptions, **labels) - value(before, exceptions, **labels) == 3


def test_slow_report_lands_in_the_latency_histogram(client: httpx.Client) -> None:
    alice = login(client, ALICE)
    before = samples(client)
    report = client.get("/api/reports/slow", headers=alice)
    after = samples(client)

    assert report.status_code == 200
    seconds = report.json()["generated_in_seconds"]
    assert 0.2 <= seconds <= 1.2
    route = {"method": "GET", "route": "/api/reports/slow"}
    count = f"{catalogue.HTTP_REQUEST_DURATION.name}_count"
    total = f"{catalogue.HTTP_REQUEST_DURATION.name}_sum"
    assert value(after, count, **route) - value(before, count, **route) == 1
    assert value(after, total, **route) - value(before, total, **route) >= seconds
    below_200ms = f"{catalogue.HTTP_REQUEST_DURATION.name}_bucket"
    assert value(after, below_200ms, le="0.2", **route) == value(before, below_200ms, le="0.2", **route)


def test_unknown_paths_share_one_series(client: httpx.Client) -> None:
    before = samples(client)
    for path in ("/wp-login.php", "/.env", "/api/nope/123", "/api/nope/456"):
        assert client.get(path).status_code == 404
    after = samples(client)

    assert requests_delta(before, after, "GET", catalogue.UNMATCHED_ROUTE, 404) == 4
    routes = {dict(labels).get("route") for _, labels in after}
    assert not {"/wp-login.php", "/.env", "/api/nope/123"} & routes


def test_health_reports_the_database_check(client: httpx.Client) -> None:
    body = client.get("/health").json()
    assert body["status"] == "pass"
    assert body["checks"]["sqlite"]["status"] == "pass"
    # identity, latencies and errors are for holders of the metrics token only
    assert "service" not in body and body["checks"]["sqlite"] == {"status": "pass"}
    assert client.get("/health/live").status_code == 200


def test_passwords_and_tokens_never_reach_the_log(server: tuple[httpx.Client, Path]) -> None:
    client, log_path = server
    secret_password = "hunter2-Secret-Pa55"
    client.post("/api/auth/login", json={"email": CAROL, "password": secret_password})
    response = client.post("/api/auth/login", json={"email": CAROL, "password": PASSWORD})
    token = response.json()["access_token"]
    request_id = response.headers["x-request-id"]
    client.get("/api/orgs", headers={"Authorization": f"Bearer {token}"}, params={"token": token})

    deadline = time.monotonic() + 5
    while request_id not in log_path.read_text():
        assert time.monotonic() < deadline, "the login was never logged"
        time.sleep(0.05)
    text = log_path.read_text()
    for secret in (secret_password, PASSWORD, token, token.split(".")[1]):
        assert secret not in text
    events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    logins = [e for e in events if e.get("event") == "user_login" and e.get("request_id") == request_id]
    assert len(logins) == 1 and logins[0]["service"] == "saas-api" and logins[0]["user_id"] == 3
    failures = [e for e in events if e.get("event") == "user_login_failed"]
    assert failures and all(CAROL not in json.dumps(e) for e in failures)


def test_bad_flaky_rate_fails_at_start_with_the_variable_named(tmp_path: Path) -> None:
    env = {**os.environ, "SAAS_FLAKY_RATE": "often", "SAAS_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    env["PYTHONPATH"] = str(services.ROOT)
    result = subprocess.run(
        [sys.executable, "-c", "import examples.saas_app.main"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SAAS_FLAKY_RATE must be a number between 0 and 1, got 'often'" in result.stderr


def test_runs_on_postgresql_with_redis(postgres_url: str) -> None:
    """The production-like set-up: PostgreSQL, Redis in the readiness checks, 20 % failures."""
    redis_url = f"redis://{services.REDIS_HOST}:{services.REDIS_PORT}/4"
    env = {"SAAS_DATABASE_URL": postgres_url, "SAAS_REDIS_URL": redis_url, "SAAS_FLAKY_RATE": "0.2"}
    with (
        services.uvicorn_process(APP, env=env) as (port, _log),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=15.0) as client,
    ):
        _wait_ready(client)
        health = client.get("/health").json()
        assert set(health["checks"]) == {"postgres", "redis"}
        assert health["checks"]["postgres"]["status"] == health["checks"]["redis"]["status"] == "pass"

        alice = login(client, ALICE)
        item = client.post("/api/workspaces/1/items", json={"title": "On Postgres"}, headers=alice)
        assert item.status_code == 201
        listed = client.get("/api/workspaces/1/items", headers=alice).json()
        assert listed[0]["title"] == "On Postgres"  # newest first

        codes = [client.get("/api/flaky", headers=alice).status_code for _ in range(10)]
        assert codes == [200, 200, 200, 200, 500, 200, 200, 200, 200, 500]
