"""`lightkeeper cost report --month YYYY-MM`: the terminal table adds up what ingest stored.

The events go in through the real `POST /api/llm/events` (posted twice: a retried upload
must not double the report), and the report runs through the real root `lightkeeper`
command (typer's CliRunner, in-process) against the store on both backends. `--server`
runs against a real `lightkeeper server` process. The expected numbers are worked out
by hand from the seeded events, never from the code under test, and events one second
either side of the month (and one whose local date is in the next month but whose UTC
time is not) pin the month's bounds: the month is a UTC month.

The command prints one breakdown, by model; there is no JSON or markdown output and no
per-operation table in it (the summary API and the /cost page have those).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, text
from typer.testing import CliRunner, Result

from lightkeeper.cli import _register, app
from lightkeeper.server.config import ServerConfig
from lightkeeper.server.http.app import create_app
from tests.server.cost.conftest import event

ADMIN_TOKEN = "report-cli-admin-token-0123456789abcdef"  # a throwaway token for these tests only
NOV_DAY = "2026-11-{:02d}T10:00:00+00:00"


def _events() -> list[dict[str, Any]]:
    gpt4o = {"provider": "openai", "model": "gpt-4o"}
    mini = {"provider": "openai", "model": "gpt-4o-mini", "input_tokens": 800, "output_tokens": 20}
    sonnet = {"provider": "anthropic", "model": "claude-sonnet-4", "input_tokens": 2000, "output_tokens": 500}
    return [
        *(
            event(n, timestamp=NOV_DAY.format(n + 2), operation="summarise", cost_usd=0.5, **gpt4o)
            for n in (1, 2, 3)
        ),
        event(
            4,
            timestamp=NOV_DAY.format(5),
            operation="classify",
            status="error",
            cost_usd=0.0,
            output_tokens=0,
            **gpt4o,
        ),
        *(
            event(n, timestamp=NOV_DAY.format(n + 1), operation="classify", cost_usd=0.125, **mini)
            for n in (5, 6, 7, 8)
        ),
        # 1 December at UTC+2 is 30 November 22:30 UTC: it belongs to November
        event(9, timestamp="2026-12-01T00:30:00+02:00", operation="classify", cost_usd=0.25, **mini),
        *(event(n, timestamp=NOV_DAY.format(n), operation="chat", cost_usd=1.25, **sonnet) for n in (10, 11)),
        # one second either side of November (UTC)
        event(12, timestamp="2026-10-31T23:59:59+00:00", operation="summarise", cost_usd=8.0, **gpt4o),
        event(13, timestamp="2026-12-01T00:00:00+00:00", operation="summarise", cost_usd=16.0, **gpt4o),
    ]


# model: calls, failed, input tokens, output tokens, cost USD; rows in the order printed (costliest first)
NOVEMBER = {
    "claude-sonnet-4": ["2", "0", "4000", "1000", "2.50"],
    "gpt-4o": ["4", "1", "4000", "300", "1.50"],
    "gpt-4o-mini": ["5", "0", "4000", "100", "0.75"],
    "total": ["11", "1", "", "", "4.75"],
}
OCTOBER = {"gpt-4o": ["1", "0", "1000", "100", "8.00"], "total": ["1", "0", "", "", "8.00"]}
DECEMBER = {"gpt-4o": ["1", "0", "1000", "100", "16.00"], "total": ["1", "0", "", "", "16.00"]}


def seed(post: Callable[[dict[str, Any]], Any]) -> None:
    """The events through the ingest API, then the same batch again as a client retry would."""
    batch = {"events": _events()}
    first, retried = post(batch), post(batch)
    assert first.status_code == retried.status_code == 200, first.text
    assert first.json() == {"received": 13, "stored": 13, "duplicates": 0}
    assert retried.json() == {"received": 13, "stored": 0, "duplicates": 13}


def table(output: str) -> dict[str, list[str]]:
    """The body rows of the printed table, by first cell (the header uses another box line)."""
    rows: dict[str, list[str]] = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == 6:
            rows[cells[0]] = cells[1:]
    return rows


def forecast_line(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith("Forecast "))


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    if not any(group.name == "cost" for group in app.registered_groups):
        _register()  # what `lightkeeper`'s entry point does before parsing
    return CliRunner().invoke(app, ["cost", "report", *args], env={"COLUMNS": "120", **(env or {})})


def cli_url(store: Engine) -> str:
    """The `--db` URL for this store; on PostgreSQL it carries the test's private schema."""
    url = store.url.render_as_string(hide_password=False)
    if store.dialect.name != "postgresql":
        return url
    with store.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    return f"{url}?options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def seeded(store: Engine) -> str:
    config = ServerConfig(admin_token=SecretStr(ADMIN_TOKEN))
    http = TestClient(create_app(config, store, instrument=False))
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    seed(lambda batch: http.post("/api/llm/events", json=batch, headers=headers))
    return cli_url(store)


def test_the_month_adds_up_per_model_and_in_total(seeded: str) -> None:
    result = run("--month", "2026-11", "--db", seeded)
    assert result.exit_code == 0, result.output
    assert "LLM cost 2026-11" in result.output
    rows = table(result.output)
    assert rows == NOVEMBER
    assert list(rows) == list(NOVEMBER)  # costliest model first, the total last
    assert forecast_line(result.output).startswith("Forecast 2026-11: $")


def test_the_neighbouring_months_get_only_their_own_second(seeded: str) -> None:
    october = run("--month", "2026-10", "--db", seeded)
    december = run("--month", "2026-12", "--db", seeded)
    assert (october.exit_code, december.exit_code) == (0, 0), october.output + december.output
    assert table(october.output) == OCTOBER
    assert table(december.output) == DECEMBER


def test_an_empty_month_says_there_is_no_data(seeded: str) -> None:
    result = run("--month", "2026-09", "--db", seeded)
    assert result.exit_code == 0, result.output
    assert result.exception is None
    assert result.output.strip() == "No LLM cost events stored for 2026-09."
    assert table(result.output) == {}  # no zero table, no forecast, no advice


def test_a_closed_month_forecast_is_its_total(seeded: str) -> None:
    result = run("--month", "2026-11", "--db", seeded)
    assert forecast_line(result.output).startswith("Forecast 2026-11: $4.75 ($4.75 to $4.75")


@pytest.mark.parametrize("month", ["2026-13", "11-2026", "nov", "2026-11-05", ""])
def test_a_malformed_month_is_a_usage_error_before_the_store_is_touched(month: str, tmp_path: Path) -> None:
    target = tmp_path / "never-created.db"
    result = run("--month", month, "--db", f"sqlite:///{target}")
    assert result.exit_code == 2, result.output
    assert "use YYYY-MM, e.g. 2026-11" in result.output
    assert "Traceback" not in result.output
    assert not target.exists()


def test_the_month_is_required(tmp_path: Path) -> None:
    result = run("--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert result.exit_code == 2
    assert "--month" in result.output


# --- against a running server ------------------------------------------------------------

_SCRIPT = Path(sys.executable).with_name("lightkeeper")
_FALLBACK = "import sys; from lightkeeper.cli import main; sys.argv[0] = 'lightkeeper'; main()"
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-c", _FALLBACK]
URL_LINE = re.compile(r"status page at (http://\S+/)")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A real `lightkeeper server` on port 0 over SQLite, seeded over HTTP; yields (URL, --db URL)."""
    folder = tmp_path_factory.mktemp("cost-report-server")
    db = f"sqlite:///{folder / 'server.db'}"
    log = folder / "server.log"
    env = {**os.environ, "LIGHTKEEPER_ADMIN_TOKEN": ADMIN_TOKEN}
    env.pop("LIGHTKEEPER_LLM_INGEST_TOKEN", None)
    with log.open("wb") as out:
        # cwd: a folder without ./lightkeeper.yaml, so no spec, no probes, no budgets
        process = subprocess.Popen(
            [*COMMAND, "server", "--db", db, "--port", "0"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=folder,
        )
    try:
        deadline = time.monotonic() + 60
        found = None
        while found is None and time.monotonic() < deadline:
            assert process.poll() is None, f"server exited early:\n{log.read_text()}"
            found = URL_LINE.search(log.read_text(errors="replace"))
            time.sleep(0.1)
        assert found is not None, f"server did not announce its URL:\n{log.read_text()}"
        base = found.group(1).rstrip("/")
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
        ) as client:
            seed(lambda batch: client.post("/api/llm/events", json=batch))
        yield base, db
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
        if process.poll() is None:
            process.kill()
            process.wait()


def test_server_mode_prints_the_same_table_as_the_store(server: tuple[str, str]) -> None:
    base, db = server
    remote = run("--month", "2026-11", "--server", base, env={"LIGHTKEEPER_ADMIN_TOKEN": ADMIN_TOKEN})
    local = run("--month", "2026-11", "--db", db)
    assert (remote.exit_code, local.exit_code) == (0, 0), remote.output + local.output
    assert table(remote.output) == table(local.output) == NOVEMBER


def test_server_mode_forecasts_the_reported_month(server: tuple[str, str]) -> None:
    remote = run("--month", "2026-11", "--server", server[0], env={"LIGHTKEEPER_ADMIN_TOKEN": ADMIN_TOKEN})
    assert forecast_line(remote.output).startswith("Forecast 2026-11: ")


def test_a_wrong_token_is_a_clear_error(server: tuple[str, str]) -> None:
    refused = run("--month", "2026-11", "--server", server[0], env={"LIGHTKEEPER_ADMIN_TOKEN": "wrong-token"})
    assert refused.exit_code != 0
    assert refused.exception is None or isinstance(refused.exception, SystemExit)
    assert "401" in refused.output or "token" in refused.output.lower()
