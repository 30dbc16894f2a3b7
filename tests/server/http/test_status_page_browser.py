"""The status page in real headless Chromium: renders, shows bars and an incident, no
console errors, and axe-core finds no serious or critical accessibility violations.

Browser, server and audit helpers are shared in `tests.server.browser`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from lightkeeper.server.config import ServerConfig
from lightkeeper.server.http.app import create_app
from lightkeeper.spec.server import ServerSection
from tests.server.browser import axe_source, chromium, console_problems, serious_violations, serve
from tests.server.http import seed
from tests.server.http.conftest import TOKEN

__all__ = ["axe_source"]  # the npm axe-core fixture
pytestmark = pytest.mark.integration


@pytest.fixture
def served(sqlite_engine: Engine) -> Iterator[str]:
    engine = sqlite_engine
    now = datetime.now(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    seed.probe(engine, "web", component="Website")
    seed.probe(engine, "api", component="API")
    seed.state(engine, "web", "up", at=now, latency_ms=42)
    seed.state(engine, "api", "down", at=now, error="expected status 200, got 503")
    seed.full_days(engine, "web", today - timedelta(days=89), 89)
    seed.full_days(engine, "api", today - timedelta(days=89), 89, down_per_day=300)
    seed.change(engine, "web", today, "up")
    seed.change(engine, "api", today, "down")
    seed.incident(engine, "api", today - timedelta(days=3), today - timedelta(days=3) + timedelta(minutes=20))
    seed.incident(engine, "api", today, None, cause="expected status 200, got 503")
    config = ServerConfig(admin_token=SecretStr(TOKEN), server=ServerSection())
    with serve(create_app(config, engine, instrument=False)) as url:
        yield url


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 900}, {"width": 375, "height": 740}])
def test_status_page_in_chromium(served: str, axe_source: str, viewport: dict[str, int]) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport=viewport)
        problems = console_problems(page)
        response = page.goto(served + "/", wait_until="load")
        assert response is not None and response.status == 200
        assert page.locator("h1").inner_text().strip() == "Some systems are down"
        assert page.locator("ul.components > li").count() == 2
        assert page.locator("ol.bars").first.locator("li").count() == 90
        visible_bars = page.locator("ol.bars").first.locator("li:visible").count()
        assert visible_bars == (90 if viewport["width"] > 640 else 30)
        assert page.get_by_text("API: outage", exact=True).is_visible()
        assert page.locator("#current-incidents ~ ul").inner_text().count("expected status 200, got 503") == 1
        # the page fits the screen: no horizontal scrolling on a phone
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

        assert serious_violations(page, axe_source) == []
        assert problems == []

        # a day with an incident links to that day's incidents: API's first is 3 days ago
        page.locator("ol.bars a").first.click()
        page.wait_for_load_state("load")
        day = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
        assert page.locator("h1").inner_text() == f"Incidents on {day}"
        assert page.locator("ul.incidents li").count() == 1
        assert "expected status 200, got 503" in page.locator("ul.incidents").inner_text()
