"""NUL characters: PostgreSQL text cannot hold U+0000, so before the guard these requests
were a 500 on PostgreSQL only (SQLite stored or matched them). Every one is now a 400 on
both stores, a 401 first for an anonymous admin call, and nothing reaches the store.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from lightkeeper.server.store import tables as t
from tests.server.http import seed
from tests.server.http.conftest import ADMIN, Harness

WINDOW = {"title": "upgrade", "starts_at": "2026-11-21T00:00:00Z", "ends_at": "2026-11-21T01:00:00Z"}
PROBE = {"name": "web", "type": "tcp", "target": "127.0.0.1:1"}
JSON_ADMIN = {**ADMIN, "Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("method", "path", "options"),
    [
        ("GET", "/api/incidents", {"params": {"probe": "we\x00b"}}),
        ("GET", "/sla/uptime", {"params": {"probe": "we\x00b"}}),
        ("GET", "/sla/uptime", {"params": {"window\x00": "1d"}}),
        ("GET", "/badge/we%00b.svg", {}),
        ("POST", "/ping/abc%00def", {}),
        ("DELETE", "/api/probes/we%00b", {"headers": ADMIN}),
        ("POST", "/api/maintenance", {"headers": ADMIN, "json": {**WINDOW, "title": "up\x00grade"}}),
        ("POST", "/api/probes", {"headers": ADMIN, "json": {**PROBE, "component": "We\x00b"}}),
        ("POST", "/api/probes", {"headers": JSON_ADMIN, "content": b'{"name": "web", "\\u0000": 1}'}),
    ],
)
def test_a_nul_anywhere_is_400_on_both_stores(
    harness: Harness, method: str, path: str, options: dict[str, Any]
) -> None:
    seed.probe(harness.engine, "web")
    response = harness.make().request(method, path, **options)
    assert response.status_code == 400, response.text
    assert "NUL character" in response.json()["detail"]
    with harness.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.maintenance)).scalar_one() == 0
        assert conn.execute(select(t.probes.c.name)).scalars().all() == ["web"]


def test_an_escaped_backslash_is_text_not_a_nul(client: TestClient) -> None:
    # `\\u0000` in JSON is a backslash followed by "u0000": no NUL, so the window is stored
    body = json.dumps({**WINDOW, "title": "a \\u0000 b"}).encode()
    assert b"\\\\u0000" in body
    response = client.post("/api/maintenance", content=body, headers=JSON_ADMIN)
    assert response.status_code == 201, response.text
    assert response.json()["title"] == "a \\u0000 b"


def test_anonymous_admin_calls_with_a_nul_are_still_401(client: TestClient) -> None:
    assert client.delete("/api/probes/we%00b").status_code == 401
    assert client.post("/api/maintenance", json={**WINDOW, "title": "\x00"}).status_code == 401
