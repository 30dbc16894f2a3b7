"""The SLO page in real headless Chromium: reached from the status page, one burn-down chart per
SLO, no console errors, and no serious or critical axe-core violations."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from lightkeeper.server.config import ServerConfig
from lightkeeper.server.http.app import create_app
from lightkeeper.server.slo import samples
from lightkeeper.server.store.db import make_engine, upgrade
from tests.server.browser import axe_source, chromium, console_problems, serious_violations, serve
from tests.server.slo.test_embedded import spec_for

__all__ = ["axe_source"]  # the npm axe-core fixture, shared with the other page tests
pytestmark = pytest.mark.integration


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'lk.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def served(store: Engine) -> Iterator[str]:
    now = datetime.now(UTC)
    # three days of traffic at 1 % errors: availability (99.5 %) burns, latency stays whole
    for step in range(3 * 24 + 1):
        at = now - timedelta(hours=3 * 24 - step)
        samples.append(store, "api-availability", "a:1", samples.Sample(at, 990.0 * step, 1000.0 * step))
        samples.append(store, "api-latency", "a:1", samples.Sample(at, 1000.0 * step, 1000.0 * step))
    config = ServerConfig(spec=spec_for("a:1"))
    with serve(create_app(config, store, instrument=False)) as url:
        yield url


def test_slo_page_in_chromium(served: str, axe_source: str) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        problems = console_problems(page)
        response = page.goto(served + "/", wait_until="load")
        assert response is not None and response.status == 200
        page.get_by_role("link", name="SLOs").click()
        page.wait_for_load_state("load")
        assert page.url == served + "/slo"
        assert page.locator("h1").inner_text().strip() == "Service level objectives"
        sections = page.locator("section.slo")
        assert sections.count() == 2
        assert page.locator("section.slo svg.burn-down").count() == 2
        for i in range(2):
            assert sections.nth(i).locator("svg").count() == 1
            assert sections.nth(i).locator("polyline").get_attribute("points")
        availability = sections.filter(has_text="api-availability").inner_text()
        assert "error budget left" in availability and "No data" not in availability

        assert serious_violations(page, axe_source) == []
        assert problems == []
