"""The RUM endpoint: good beacons are recorded under the route template; hostile ones are
refused with a 4xx and add no series; the snippet is served and stays small."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from starlette.testclient import TestClient

import lightkeeper
from lightkeeper import catalogue
from lightkeeper.sdk.rum import Beacon, PageNames, TokenBuckets
from lightkeeper.testing import capture_logs

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
HEADERS = {"user-agent": CHROME, "content-type": "text/plain;charset=UTF-8"}
RUM_FAMILIES = (
    catalogue.WEB_VITALS_LCP,
    catalogue.WEB_VITALS_INP,
    catalogue.WEB_VITALS_CLS,
    catalogue.WEB_VITALS_FCP,
    catalogue.WEB_VITALS_TTFB,
    catalogue.FRONTEND_ERRORS,
)


def _app(**settings: Any) -> FastAPI:
    app = FastAPI()

    @app.get("/projects/{project_id}/tasks/{task_id}")
    async def task(project_id: int, task_id: int) -> dict[str, int]:
        return {"id": task_id}

    @app.get("/")
    async def home() -> dict[str, str]:
        return {}

    options: dict[str, Any] = {"rum_enabled": True, "configure_logging": False, **settings}
    return lightkeeper.instrument(app, service="rum-test", **options)  # type: ignore[no-any-return]


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(_app()) as c:
        yield c


def _series() -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    names = {s.name for s in RUM_FAMILIES}
    return {
        (sample.name, tuple(sorted(sample.labels.items())))
        for metric in REGISTRY.collect()
        for sample in metric.samples
        if metric.name in names or metric.name + "_total" in names
    }


def _count(signal: catalogue.Signal, **labels: str) -> float:
    name = signal.name if signal.kind == "counter" else f"{signal.name}_count"
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _post(client: TestClient, body: Any, headers: dict[str, str] | None = None) -> int:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/lightkeeper/rum", content=raw, headers=headers or HEADERS).status_code


async def _post_many(app: Any, pages: list[str]) -> set[int]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        statuses = set()
        for page in pages:
            response = await client.post(
                "/lightkeeper/rum", content=json.dumps(_beacon(page=page)).encode(), headers=HEADERS
            )
            statuses.add(response.status_code)
    return statuses


def _beacon(page: str = "/projects/{project_id}/tasks/{task_id}", **extra: Any) -> dict[str, Any]:
    return {
        "page": page,
        "device": "mobile",
        "vitals": {"lcp": 2300, "inp": 180, "cls": 0.02, "fcp": 900, "ttfb": 120},
        **extra,
    }


def test_a_valid_beacon_records_every_vital_under_the_route_template(client: TestClient) -> None:
    page = "/projects/{project_id}/tasks/{task_id}"
    before = _count(catalogue.WEB_VITALS_LCP, page=page, device="mobile")
    lcp_good_before = (
        REGISTRY.get_sample_value(
            "web_vitals_lcp_seconds_bucket", {"page": page, "device": "mobile", "le": "2.5"}
        )
        or 0.0
    )

    assert _post(client, _beacon()) == 204

    assert _count(catalogue.WEB_VITALS_LCP, page=page, device="mobile") == before + 1
    good = REGISTRY.get_sample_value(
        "web_vitals_lcp_seconds_bucket", {"page": page, "device": "mobile", "le": "2.5"}
    )
    assert good == lcp_good_before + 1  # 2300 ms is "good": inside the 2.5 s bucket
    for signal in RUM_FAMILIES[1:5]:
        assert _count(signal, page=page, device="mobile") >= 1


def test_a_raw_path_with_ids_is_recorded_as_its_template(client: TestClient) -> None:
    page = "/projects/{project_id}/tasks/{task_id}"
    before = _count(catalogue.WEB_VITALS_FCP, page=page, device="mobile")
    assert _post(client, _beacon(page="/projects/7/tasks/93812?tab=2")) == 204
    assert _count(catalogue.WEB_VITALS_FCP, page=page, device="mobile") == before + 1
    assert not any("93812" in str(labels) for _, labels in _series())


def test_errors_are_counted_by_type_and_their_text_goes_to_the_log_redacted(client: TestClient) -> None:
    page = "/"
    before_type = _count(catalogue.FRONTEND_ERRORS, page=page, error_type="TypeError")
    before_rej = _count(catalogue.FRONTEND_ERRORS, page=page, error_type="unhandled_rejection")
    before_other = _count(catalogue.FRONTEND_ERRORS, page=page, error_type="other")
    secret = "Bearer abcdefghijklmnopqrstuvwxyz012345"
    errors = [
        {
            "kind": "error",
            "name": "TypeError",
            "message": f"x is undefined {secret}",
            "stack": "at f (app.js:1)",
        },
        {"kind": "rejection", "name": "Error", "message": "fetch failed"},
        {"kind": "error", "name": "MyVeryOwnError", "message": "custom"},
    ]
    with capture_logs() as logs:
        assert _post(client, {"page": "/", "device": "desktop", "errors": errors}) == 204

    assert _count(catalogue.FRONTEND_ERRORS, page=page, error_type="TypeError") == before_type + 1
    assert _count(catalogue.FRONTEND_ERRORS, page=page, error_type="unhandled_rejection") == before_rej + 1
    assert _count(catalogue.FRONTEND_ERRORS, page=page, error_type="other") == before_other + 1
    lines = [line for line in logs if line["event"] == "frontend_error"]
    assert [line["error_type"] for line in lines] == ["TypeError", "unhandled_rejection", "other"]
    assert lines[0]["page"] == "/" and "x is undefined" in lines[0]["error_message"]
    assert "abcdefghijklmnopqrstuvwxyz012345" not in json.dumps(lines)
    assert not any("undefined" in str(labels) for _, labels in _series())


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{" * 9000, 413),
        (b"not json", 400),
        ({"page": 5, "device": "mobile"}, 400),
        ({"page": "/", "device": "fridge"}, 400),
        ({"page": "/", "device": "mobile", "vitals": {"lcp": "2300"}}, 400),
        ({"page": "/", "device": "mobile", "vitals": {"lcp": -1}}, 400),
        ({"page": "/", "device": "mobile", "vitals": {"lcp": 9e9}}, 400),
        ({"page": "/", "device": "mobile", "vitals": {"cls": 1e6}}, 400),
        ({"page": "/", "device": "mobile", "vitals": {"lcp": 1, "evil": 1}}, 400),
        ({"page": "/", "device": "mobile", "errors": [{"kind": "error"}] * 11}, 400),
        ({"page": "x" * 600, "device": "mobile"}, 400),
    ],
)
def test_hostile_beacons_get_a_4xx_and_add_no_series(client: TestClient, body: Any, status: int) -> None:
    before = _series()
    assert _post(client, body) == status
    assert _series() == before


def test_non_finite_numbers_are_refused(client: TestClient) -> None:
    before = _series()
    assert _post(client, b'{"page":"/","device":"mobile","vitals":{"lcp":NaN}}') == 400
    assert _series() == before


def test_bots_wrong_methods_and_content_types_are_refused(client: TestClient) -> None:
    before = _series()
    bot = {**HEADERS, "user-agent": "Mozilla/5.0 (compatible; Googlebot/2.1)"}
    assert _post(client, _beacon(), bot) == 403
    assert _post(client, _beacon(), {**HEADERS, "user-agent": ""}) == 403
    assert _post(client, _beacon(), {**HEADERS, "content-type": "multipart/form-data"}) == 415
    assert client.get("/lightkeeper/rum", headers=HEADERS).status_code == 405
    assert _series() == before


def test_ten_thousand_page_names_add_no_series() -> None:
    with TestClient(_app(rum_beacons_per_minute=6000)) as client:
        # Every request comes from one test client: lift its limit for this test only.
        runtime = client.app._lightkeeper_runtime  # type: ignore[attr-defined]
        runtime.rum.limiter = TokenBuckets(6000, capacity=1e9)
        _post(client, _beacon(page="/warm-up-other"))
        before = _series()
        # Driven through the ASGI app directly (one event loop, no TestClient thread
        # hop per request): the same middleware and endpoint, a fraction of the time.
        statuses = asyncio.run(_post_many(client.app, [f"/no-such-page-{i}/{i}" for i in range(10_000)]))
        assert statuses == {204}
        assert _series() == before
    assert _count(catalogue.WEB_VITALS_LCP, page="other", device="mobile") >= 10_000


def test_a_client_over_the_rate_gets_429_and_others_are_unaffected() -> None:
    with TestClient(_app(rum_beacons_per_minute=60)) as client:
        statuses = [_post(client, _beacon()) for _ in range(15)]
    assert statuses[:10] == [204] * 10  # the burst
    assert set(statuses[10:]) == {429}


def test_the_token_bucket_refills_and_forgets_old_clients_first() -> None:
    buckets = TokenBuckets(60, capacity=2, max_clients=3)
    assert [buckets.take("a", now=0.0) for _ in range(3)] == [True, True, False]
    assert buckets.take("a", now=1.0)  # one token per second at 60 a minute
    for n, client in enumerate(["b", "c", "d", "e"]):
        buckets.take(client, now=2.0 + n)
    assert len(buckets) == 3


def test_pages_resolve_to_templates_or_other_including_routes_added_later() -> None:
    app = FastAPI()
    pages = PageNames(app.router.routes)
    assert pages.resolve("/late/{slug}") == "other"

    @app.get("/late/{slug}")
    async def late(slug: str) -> None:
        return None

    assert pages.resolve("/late/{slug}") == "/late/{slug}"
    assert pages.resolve("/late/hello") == "/late/{slug}"
    assert pages.resolve("/late/hello/extra") == "other"


def test_the_snippet_is_served_small_with_the_endpoint_injected(client: TestClient) -> None:
    response = client.get("/lightkeeper/rum.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert '"/lightkeeper/rum"' in response.text and "__LK_ENDPOINT__" not in response.text
    assert len(gzip.compress(response.content, 9)) < 3 * 1024


def test_rum_is_off_by_default() -> None:
    app = FastAPI()
    lightkeeper.instrument(app, configure_logging=False)
    with TestClient(app) as client:
        assert client.post("/lightkeeper/rum", content=b"{}", headers=HEADERS).status_code == 404
        assert client.get("/lightkeeper/rum.js").status_code == 404


def test_the_beacon_schema_is_closed() -> None:
    assert set(Beacon.model_fields) == {"page", "device", "vitals", "errors"}
