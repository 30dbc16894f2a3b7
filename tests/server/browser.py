"""Shared pieces of the server's real-browser tests: an app on an ephemeral port, headless
Chromium, console watching and an axe-core audit.

Chromium is Debian's package (`apt-get install chromium`), driven by Playwright with
`executable_path`; axe-core comes from npm (`npm pack`) into pytest's cache, never a CDN,
so the audit is the same offline and on every run.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import uvicorn

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page
    from starlette.types import ASGIApp

CHROMIUM = Path("/usr/bin/chromium")
AXE_VERSION = "4.14.1"
START_SECONDS = 10


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


@contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    """Run `app` under uvicorn in a thread on an ephemeral port; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_SECONDS
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=START_SECONDS)


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Debian Chromium; a missing binary fails the test rather than skipping it."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is needed: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def console_problems(page: Page) -> list[str]:
    """A list that fills with the page's console errors and warnings and uncaught exceptions."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


def serious_violations(page: Page, axe_source: str) -> list[str]:
    """axe-core's serious and critical findings on the page as loaded now, one line per rule."""
    page.add_script_tag(content=axe_source)
    result = page.evaluate("async () => await axe.run(document)")
    return [
        f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes)"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
