"""rum.js in a real headless Chromium against a real uvicorn: a page view, a click and an
uncaught error end up as metrics labelled with the route template, never the raw URL."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from prometheus_client import REGISTRY

import lightkeeper
from lightkeeper import catalogue

CHROMIUM = Path("/usr/bin/chromium")
# Headless Chromium announces itself as "HeadlessChrome", which the endpoint treats as a
# bot (synthetic page views would skew real users' vitals): the test browses as a user.
# Set browser-wide: a context's override does not reach beacons sent during pagehide.
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
)
TEMPLATE = "/items/{item_id}"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and shutil.which("chromium") is None, reason="Debian's chromium is not installed"
)

PAGE = """<!doctype html><html><head><title>item</title>
<script src="/lightkeeper/rum.js" data-page="{template}"></script></head>
<body><h1>Item {item_id}</h1><p>Some text so the page has a largest contentful paint.</p>
<button id="work" onclick="const t = performance.now(); while (performance.now() - t < 120) {{}};
this.textContent = 'done'">work</button>
<button id="boom" onclick="setTimeout(() => {{ throw new TypeError('boom token=s3cr3tvalue99') }})">
boom</button>
</body></html>"""


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}", response_class=HTMLResponse)
    async def item(item_id: int) -> str:
        return PAGE.format(template=TEMPLATE, item_id=item_id)

    @app.get("/bye", response_class=HTMLResponse)
    async def bye() -> str:
        return "<!doctype html><p>bye</p>"

    return lightkeeper.instrument(app, service="rum-browser", rum_enabled=True)  # type: ignore[no-any-return]


@pytest.fixture
def base_url() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(_app(), log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _wait_for(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_a_page_view_a_click_and_a_throw_reach_the_metrics_by_template(base_url: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    lcp = f"{catalogue.WEB_VITALS_LCP.name}_count"
    inp = f"{catalogue.WEB_VITALS_INP.name}_count"
    errors = catalogue.FRONTEND_ERRORS.name
    labels = {"page": TEMPLATE, "device": "desktop"}
    before = {
        "lcp": _count(lcp, **labels),
        "inp": _count(inp, **labels),
        "err": _count(errors, page=TEMPLATE, error_type="TypeError"),
    }

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=[f"--user-agent={USER_AGENT}"]
        )
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.goto(f"{base_url}/items/48213", wait_until="load")
            page.wait_for_timeout(300)  # let LCP and FCP be observed
            page.click("#work")
            page.click("#boom")
            page.wait_for_timeout(300)
            page.goto(f"{base_url}/bye", wait_until="load")  # pagehide: the beacon goes out
            page.close()
        finally:
            browser.close()

    assert _wait_for(lambda: _count(errors, page=TEMPLATE, error_type="TypeError") > before["err"])
    assert _wait_for(lambda: _count(lcp, **labels) > before["lcp"])
    assert _count(inp, **labels) > before["inp"], "the click was not reported as an interaction"
    assert _count(f"{catalogue.WEB_VITALS_FCP.name}_count", **labels) >= 1
    assert _count(f"{catalogue.WEB_VITALS_TTFB.name}_count", **labels) >= 1
    inp_sum = _count(f"{catalogue.WEB_VITALS_INP.name}_sum", **labels)
    assert inp_sum >= 0.1, "a 120 ms handler makes an interaction of at least 100 ms"

    exposed = {
        sample.labels.get("page")
        for metric in REGISTRY.collect()
        for sample in metric.samples
        if metric.name.startswith("web_vitals_") or metric.name == "frontend_errors"
    }
    assert TEMPLATE in exposed
    assert not any("48213" in (value or "") for value in exposed)
