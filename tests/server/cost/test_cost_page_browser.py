"""The Cost page in real headless Chromium, over 30 days of constructed LLM calls whose every
total is known: the daily chart, both breakdowns, the forecast, the spike and the budgets
show exactly those numbers, with no console errors and no serious or critical axe-core
violations, on a desktop and on a phone.

The calls are flat on purpose ($4.25 a day) apart from one spike, so each figure on the
page can be worked out by hand: the spike is Nov 3, before the forecast's 14-day window
(Nov 6-19), so the forecast is exact with a zero-width interval.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from lightkeeper.server.config import ServerConfig
from lightkeeper.server.cost.ingest import store_events
from lightkeeper.server.cost.schema import CostEventIn
from lightkeeper.server.http.app import create_app
from lightkeeper.server.store.db import make_engine, upgrade
from lightkeeper.spec.models import Spec
from tests.server.browser import axe_source, chromium, console_problems, serious_violations, serve

if TYPE_CHECKING:
    from playwright.sync_api import Page, ViewportSize

__all__ = ["axe_source"]  # the npm axe-core fixture, shared with the other page tests
pytestmark = pytest.mark.integration

TOKEN = "cost-page-admin-token-0123456789"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FIRST = date(2026, 10, 22)  # 30 days up to and including NOW's day
DAYS = [FIRST + timedelta(days=n) for n in range(30)]
SPIKE = date(2026, 11, 3)
FAILED = date(2026, 11, 5)
# (provider, model, operation, calls a day, USD a call, input tokens, output tokens)
TRAFFIC = [
    ("openai", "gpt-4o", "summarise", 4, 0.50, 1000, 100),
    ("openai", "gpt-4o", "chat", 1, 0.50, 1000, 100),
    ("anthropic", "claude-sonnet-4-5", "chat", 2, 0.75, 2000, 300),
    ("openai", "gpt-4o-mini", "embed", 1, 0.25, 500, 0),
]
SPIKE_CALLS = 18  # extra claude-sonnet-4-5 chat calls on SPIKE: +$13.50
SPEC = Spec.model_validate(
    {
        "service": "shop",
        "environments": {"prod": {"targets": ["127.0.0.1:1"]}},
        "budgets": {"llm_monthly_usd": 120, "llm_operations_usd": {"chat": 50}},
    }
)


def constructed_events() -> list[CostEventIn]:
    ids = count(1)

    def call(day: date, provider: str, model: str, operation: str, **fields: object) -> CostEventIn:
        n = next(ids)
        return CostEventIn.model_validate(
            {
                "event_id": f"cost-page-{n:06d}",
                "timestamp": datetime(day.year, day.month, day.day, 10, tzinfo=UTC).isoformat(),
                "provider": provider,
                "model": model,
                "operation": operation,
                "user_hash": f"{n % 5:032x}",
                "workspace_id": "acme",
                "request_id": f"req-{n}",
            }
            | fields
        )

    events = []
    for day in DAYS:
        for provider, model, operation, calls, cost, tokens_in, tokens_out in TRAFFIC:
            extra = SPIKE_CALLS if (day, model) == (SPIKE, "claude-sonnet-4-5") else 0
            for _ in range(calls + extra):
                events.append(
                    call(
                        day,
                        provider,
                        model,
                        operation,
                        status="ok",
                        cost_usd=cost,
                        input_tokens=tokens_in,
                        output_tokens=tokens_out,
                    )
                )
    # a failed call the provider billed nothing for: counted, costs $0
    events.append(call(FAILED, "openai", "gpt-4o-mini", "embed", status="error", cost_usd=0.0))
    return events


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'lk.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def served(store: Engine) -> Iterator[str]:
    events = constructed_events()
    assert store_events(store, events) == len(events) == 30 * 8 + SPIKE_CALLS + 1
    config = ServerConfig(admin_token=SecretStr(TOKEN), spec=SPEC)
    with serve(create_app(config, store, clock=lambda: NOW, instrument=False)) as url:
        yield url


def cells(page: Page, selector: str) -> list[list[str]]:
    """Each row's cell texts, header cells included."""
    return list(
        page.locator(selector).evaluate_all(
            "rows => rows.map(r => Array.from(r.cells, c => c.innerText.trim()))"
        )
    )


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 900}, {"width": 390, "height": 844}])
def test_cost_page_in_chromium(served: str, axe_source: str, viewport: ViewportSize) -> None:
    url = f"{served}/cost?from={DAYS[0]}&to={DAYS[-1]}"
    with chromium() as browser:
        # spend per workspace is not public: no token, no page (and nothing of it rendered)
        anonymous = browser.new_page()
        response = anonymous.goto(url)
        assert response is not None and response.status == 401
        assert "LLM cost" not in anonymous.content()
        anonymous.close()

        context = browser.new_context(
            viewport=viewport, extra_http_headers={"Authorization": f"Bearer {TOKEN}"}
        )
        page = context.new_page()
        problems = console_problems(page)
        response = page.goto(url, wait_until="load")
        assert response is not None and response.status == 200
        assert page.locator("h1").inner_text().strip() == "LLM cost 2026-10-22 to 2026-11-20"
        assert page.locator("#total").inner_text() == "$141.00"
        assert "over 259 calls (1 failed)" in page.locator("main > p").first.inner_text()

        # one bar per day, each labelled with its day's exact cost
        chart = page.locator("section[aria-labelledby=daily-h] svg")
        assert chart.count() == 1 and chart.is_visible()
        assert chart.get_attribute("aria-label") == "Daily LLM cost, peak $17.75"
        titles = chart.locator("rect.bar title").all_text_contents()
        daily = [[d.isoformat(), f"${17.75 if d == SPIKE else 4.25:.2f}"] for d in DAYS]
        assert titles == [f"{day}: {cost}" for day, cost in daily]
        heights = chart.locator("rect.bar").evaluate_all("bars => bars.map(b => b.getBBox().height)")
        assert max(heights) == heights[DAYS.index(SPIKE)] and min(heights) > 0
        # the same numbers for a screen reader, to which the chart is one image
        page.get_by_text("Daily cost as a table").click()
        assert page.locator("section[aria-labelledby=daily-h] table").is_visible()
        assert cells(page, "section[aria-labelledby=daily-h] tbody tr") == daily

        assert cells(page, "#by-model tbody tr") == [
            ["gpt-4o", "150", "0", "150000", "15000", "$75.00"],
            ["claude-sonnet-4-5", "78", "0", "156000", "23400", "$58.50"],
            ["gpt-4o-mini", "31", "1", "15000", "0", "$7.50"],
        ]
        assert cells(page, "#by-operation tbody tr") == [
            ["chat", "108", "0", "186000", "26400", "$73.50"],
            ["summarise", "120", "0", "120000", "12000", "$60.00"],
            ["embed", "31", "1", "15000", "0", "$7.50"],
        ]

        # Nov 1-19 spent 19 x $4.25 + $13.50 = $94.25; the flat last 14 days add 11 x $4.25 for Nov 20-30
        assert page.locator("#forecast-h").inner_text() == "Forecast for 2026-11"
        forecast = page.locator("#forecast").inner_text()
        assert forecast.startswith("$141.00 (95 % interval $141.00 to $141.00); $94.25 spent so far;")

        anomalies = page.locator("#anomalies li").all_inner_texts()
        assert len(anomalies) == 1
        assert anomalies[0].startswith("2026-11-03: $17.75 against a median of $4.25 (robust z ")
        assert anomalies[0].endswith("chat on claude-sonnet-4-5 rose by $13.50")

        # November to date (Nov 1-20): $98.50 of $120 overall, chat $53.50 of $50 (crossed)
        assert cells(page, "#budgets tbody tr") == [
            ["global", "$98.50", "$120.00", "82.1 %"],
            ["operation:chat", "$53.50", "$50.00", "107.0 %"],
        ]

        # the page fits the screen: no horizontal scrolling on a phone, no table past the margin
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        overflowing = page.locator("main table").evaluate_all(
            """tables => tables.filter(t => t.getBoundingClientRect().right >
                document.querySelector('main').getBoundingClientRect().right + 0.5).map(t => t.id)"""
        )
        assert overflowing == []
        assert serious_violations(page, axe_source) == []
        assert problems == []
        context.close()
