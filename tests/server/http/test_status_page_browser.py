"""The status page in real headless Chromium: renders, shows bars and an incident, no
console errors, and axe-core finds no serious or critical accessibility violations.

Chromium is Debian's package (`apt-get install chromium`), driven by Playwright with
`executable_path`; axe-core comes from npm (`npm pack`) into pytest's cache, never a CDN.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from pydantic import SecretStr

from lightkeeper.server.config import ServerConfig
from lightkeeper.server.http.app import create_app
from lightkeeper.spec.server import ServerSection
from tests.server.http import seed
from tests.server.http.conftest import TOKEN

CHROMIUM = Path("/usr/bin/chromium")
AXE_VERSION = "4.14.1"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def axe_source(request: pytest.FixtureRequest) -> str:
    folder = Path(request.config.cache.mkdir("axe-core"))
    script = folder / f"axe-{AXE_VERSION}.min.js"
    if not script.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed to fetch axe-core (apt-get install npm)")
        subprocess.run(
            [npm, "pack", f"axe-core@{AXE_VERSION}", "--silent", "--pack-destination", str(folder)],
            check=True,
            timeout=120,
            capture_output=True,
        )
        with tarfile.open(folder / f"axe-core-{AXE_VERSION}.tgz") as archive:
            member = archive.extractfile("package/axe.min.js")
            assert member is not None
            script.write_bytes(member.read())
    return script.read_text()


@pytest.fixture
def served(engine) -> Iterator[str]:  # type: ignore[no-untyped-def]
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
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config, engine, instrument=False), host="127.0.0.1", port=0, log_config=None
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 900}, {"width": 375, "height": 740}])
def test_status_page_in_chromium(served: str, axe_source: str, viewport: dict[str, int]) -> None:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is needed: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport=viewport)
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            response = page.goto(served + "/", wait_until="load")
            assert response is not None and response.status == 200
            assert page.locator("h1").inner_text().strip() == "Some systems are down"
            assert page.locator("ul.components > li").count() == 2
            assert page.locator("ol.bars").first.locator("li").count() == 90
            visible_bars = page.locator("ol.bars").first.locator("li:visible").count()
            assert visible_bars == (90 if viewport["width"] > 640 else 30)
            assert page.get_by_text("API: outage", exact=True).is_visible()
            assert (
                page.locator("#current-incidents ~ ul").inner_text().count("expected status 200, got 503")
                == 1
            )
            # the page fits the screen: no horizontal scrolling on a phone
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

            page.add_script_tag(content=axe_source)
            result = page.evaluate("async () => await axe.run(document)")
            serious = [
                f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes)"
                for v in result["violations"]
                if v["impact"] in ("serious", "critical")
            ]
            assert serious == []
            assert problems == []

            # a day with an incident links to that day's incidents: API's first is 3 days ago
            page.locator("ol.bars a").first.click()
            page.wait_for_load_state("load")
            day = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
            assert page.locator("h1").inner_text() == f"Incidents on {day}"
            assert page.locator("ul.incidents li").count() == 1
            assert "expected status 200, got 503" in page.locator("ul.incidents").inner_text()
        finally:
            browser.close()
