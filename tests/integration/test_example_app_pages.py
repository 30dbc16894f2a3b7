"""The example app's browser page and the signals it reads from its spec, over a real uvicorn.

The app declares its usage events and workflow gauges by reading examples/lightkeeper.yaml,
the file its alerts are generated from; these tests check from the outside (its HTML and
its /metrics) that what it serves is what the spec says, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from examples.saas_app import main as example_main
from examples.saas_app.models import ContentItem, ContentStatus, User, Workspace
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

import lightkeeper
from lightkeeper import catalogue, workflow
from tests.integration.test_example_app import Samples, samples
from tests.support import services

pytestmark = pytest.mark.integration

APP = "examples.saas_app.main:app"
SPEC = services.ROOT / "examples" / "lightkeeper.yaml"
PAGE = "/app/items/{item_id}"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


def series(snapshot: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in snapshot.items() if n == name}


def _wait_ready(client: httpx.Client) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if client.get("/health/ready").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("the example app never became ready")


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[httpx.Client, str]]:
    """The app with its database URL, sampling its workflow every second.

    It runs from a working directory with no lightkeeper.yaml in it: the app must find
    its spec next to its package, not wherever it was started.
    """
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'app.db'}"
    env = {"SAAS_DATABASE_URL": url, "SAAS_WORKFLOW_INTERVAL": "1"}
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    with (
        services.uvicorn_process(APP, env=env, cwd=elsewhere, log_path=tmp_path / "app.log") as (port, _),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=15.0) as client,
    ):
        _wait_ready(client)
        yield client, url


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts.append(dict(attrs))


def test_the_item_page_loads_the_rum_script_with_its_route_template(app: tuple[httpx.Client, str]) -> None:
    client, _ = app
    response = client.get("/app/items/4711")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    parser = _Scripts()
    parser.feed(response.text)
    rum = [s for s in parser.scripts if s.get("src") == "/lightkeeper/rum.js"]
    assert len(rum) == 1
    assert rum[0]["data-page"] == PAGE  # the template, never "/app/items/4711"
    assert "defer" in rum[0]
    # the script it names is served, and a beacon naming the page lands on that template
    script = client.get("/lightkeeper/rum.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    beacon = {"page": PAGE, "device": "desktop", "vitals": {"lcp": 1234.0, "ttfb": 80.0}}
    accepted = client.post("/lightkeeper/rum", json=beacon, headers={"User-Agent": BROWSER})
    assert accepted.status_code < 300, accepted.text
    lcp = series(samples(client), catalogue.WEB_VITALS_LCP.name + "_count")
    assert lcp == {frozenset({"page": PAGE, "device": "desktop"}.items()): 1.0}
    # a page id that is not an int is refused before any HTML is written
    assert client.get("/app/items/%3Cscript%3E").status_code == 422


def test_the_app_declares_exactly_the_spec_usage_events(app: tuple[httpx.Client, str]) -> None:
    client, _ = app
    declared = lightkeeper.usage_events_from_spec(SPEC)
    # every declared combination is exposed at 0 from the start, and nothing else
    expected = set()
    for event, labels in declared.items():
        names = sorted(labels)
        for values in itertools.product(*(labels[n] for n in names)):
            expected.add((event, tuple(zip(names, values, strict=True))))

    exposed = {
        (dict(labels)["event"], tuple(sorted((k, v) for k, v in labels if k != "event" and v)))
        for labels in series(samples(client), catalogue.USAGE_EVENTS.name)
    }

    assert "content_item_created" in declared  # the spec does declare events, some with labels
    assert exposed == expected


def test_the_sampler_reads_the_spec_entity_and_aggregates(app: tuple[httpx.Client, str]) -> None:
    client, url = app
    (entity,), aggregates = workflow.from_spec(SPEC)
    assert [a.name for a in aggregates] == [
        "content_stale_in_review",
        "active_workspaces_24h",
        "active_workspaces_7d",
    ]
    # One item waiting in review for two days, in the workspace the seeded item is not in:
    # stale in review, active this week but not today.
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with Session(engine) as session:
            docs = session.scalar(select(Workspace).where(Workspace.name == "Documentation"))
            author = session.scalar(select(User.id).order_by(User.id).limit(1))
            assert docs is not None and author is not None
            two_days_ago = datetime.now(UTC) - timedelta(days=2)
            session.add(
                ContentItem(
                    workspace_id=docs.id,
                    author_id=author,
                    title="Old draft",
                    status=ContentStatus.REVIEW,
                    status_changed_at=two_days_ago,
                    updated_at=two_days_ago,
                    created_at=two_days_ago,
                )
            )
            session.commit()
    finally:
        engine.dispose()

    expected = {"content_stale_in_review": 1.0, "active_workspaces_24h": 1.0, "active_workspaces_7d": 2.0}
    # The sampler's two connections take the entity and the aggregates in parallel, so one
    # sample may see the new row in one statement and not yet in another: wait for both.
    deadline = time.monotonic() + 15
    while True:
        snapshot = samples(client)
        found = {
            dict(labels)["name"]: v
            for labels, v in series(snapshot, catalogue.WORKFLOW_AGGREGATE.name).items()
        }
        statuses = {
            dict(labels)["status"]: v
            for labels, v in series(snapshot, catalogue.WORKFLOW_ENTITIES.name).items()
            if dict(labels)["entity"] == entity.label
        }
        if (statuses.get("review") == 2 and found == expected) or time.monotonic() > deadline:
            break
        time.sleep(0.2)

    assert found == expected
    assert entity.label == "content_item"
    assert set(statuses) == {*entity.statuses, catalogue.WORKFLOW_OTHER_STATUS}
    assert statuses["review"] == 2 and statuses["other"] == 0
    stuck = series(snapshot, catalogue.WORKFLOW_STUCK_ENTITIES.name)
    assert {(dict(k)["status"], dict(k)["threshold"]) for k in stuck} == {
        ("processing", "30m"),
        ("processing", "24h"),
    }
    assert series(snapshot, catalogue.WORKFLOW_SAMPLE_ERRORS.name) == {}


def test_the_spec_describes_the_app_model() -> None:
    """The spec, not the code, now declares the workflow: it must name the model's real columns
    and every status the model can hold (an undeclared one would only ever count as `other`)."""
    (entity,), _ = workflow.from_spec(SPEC)
    columns = ContentItem.__table__.c

    assert entity.table == ContentItem.__tablename__
    assert entity.status_column in columns and entity.age_column in columns
    assert entity.age_column == "status_changed_at"
    assert sorted(entity.statuses) == sorted(s.value for s in ContentStatus)
    assert entity.processing == ("processing",)
    assert SPEC.resolve() == example_main.SPEC
