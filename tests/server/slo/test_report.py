"""The monthly budget report: exact weekly minutes from constructed samples and incidents, via API and CLI."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert
from typer.testing import CliRunner

from lightkeeper.cli import app as cli_app
from lightkeeper.server.config import ServerConfig
from lightkeeper.server.http.app import create_app
from lightkeeper.server.slo import report, samples
from lightkeeper.server.store.db import make_engine, upgrade
from lightkeeper.server.store.tables import incidents
from lightkeeper.spec.models import Spec
from tests.support import services

NOW = datetime(2026, 12, 5, tzinfo=UTC)


def at(day: int, hour: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


SPEC = Spec.model_validate(
    {
        "service": "tiny",
        "environments": {"prod": {"targets": ["a:1"]}},
        "slos": [
            {"name": "relaxed", "objective": 99.5, "sli": {"kind": "availability"}},
            {"name": "strict", "objective": 99.9, "sli": {"kind": "availability"}},
        ],
    }
)

# Cumulative (good, total) per scrape. The month carries 432,000 events, so with a 43,200-minute
# month one bad event spends 0.1 min: 500 bad in week 46 = 50 min, 100 bad in week 47 = 10 min.
SCRAPES = [
    (datetime(2026, 10, 31, 22, tzinfo=UTC), 0, 0),
    (datetime(2026, 10, 31, 23, tzinfo=UTC), 50_000, 60_000),  # October's 10,000 bad: not November's
    (at(1), 50_000, 60_000),
    (at(1, 12), 150_000, 160_000),  # W44 (Sunday 1 Nov): 100,000 good
    (at(10, 12), 249_500, 260_000),  # W46: 100,000 events, 500 bad
    (at(17, 6), 9_900, 10_000),  # W47: the app restarted; 10,000 events since, 100 bad
    (at(30, 12), 231_900, 232_000),  # W49 (Monday 30 Nov): 222,000 good
    (at(1, 12, month=12), 300_000, 400_000),  # December: outside the report
]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = make_engine(f"sqlite:///{tmp_path / 'lk.db'}")
    upgrade(made)
    for when, good, total in SCRAPES:
        for slo in ("relaxed", "strict"):
            samples.append(made, slo, "a:1", samples.Sample(when, good, total))
    with made.begin() as conn:
        conn.execute(
            insert(incidents),
            [
                {"probe": "api", "started_at": at(10, 10), "resolved_at": at(10, 11), "cause": "HTTP 503"},
                {
                    "probe": "db",
                    "started_at": datetime(2026, 10, 30, tzinfo=UTC),
                    "resolved_at": at(2, 1),
                    "cause": "timeout",
                },
                {"probe": "api", "started_at": at(29, 20), "resolved_at": None, "cause": "HTTP 500"},
                {"probe": "old", "started_at": at(1, month=10), "resolved_at": at(2, month=10), "cause": "x"},
            ],
        )
    yield made
    made.dispose()


def test_weekly_minutes_incidents_and_verdict(engine: Engine) -> None:
    rep = report.report(engine, SPEC.slos[0], "2026-11", NOW)
    assert rep["error_budget_minutes"] == pytest.approx(216.0)
    weeks = [(w["week"], w["start"], w["end"]) for w in rep["weeks"]]
    assert weeks == [
        ("2026-W44", "2026-11-01", "2026-11-01"),
        ("2026-W45", "2026-11-02", "2026-11-08"),
        ("2026-W46", "2026-11-09", "2026-11-15"),
        ("2026-W47", "2026-11-16", "2026-11-22"),
        ("2026-W48", "2026-11-23", "2026-11-29"),
        ("2026-W49", "2026-11-30", "2026-11-30"),
    ]
    assert [w["budget_used_minutes"] for w in rep["weeks"]] == pytest.approx([0, 0, 50, 10, 0, 0])
    assert [w["budget_remaining_minutes"] for w in rep["weeks"]] == pytest.approx(
        [216, 216, 166, 156, 156, 156]
    )
    assert sum(w["total_events"] for w in rep["weeks"]) == pytest.approx(432_000)
    assert rep["budget_used_minutes"] == pytest.approx(60.0)
    assert rep["sli_percent"] == pytest.approx(100 * (1 - 600 / 432_000))
    assert rep["verdict"] == "met"
    probes = [[i["probe"] for i in w["incidents"]] for w in rep["weeks"]]
    assert probes == [["db"], ["db"], ["api"], [], ["api"], ["api"]]
    assert rep["weeks"][2]["incidents"][0]["cause"] == "HTTP 503"


def test_an_overspent_month_names_the_day_the_budget_ran_out(engine: Engine) -> None:
    rep = report.report(engine, SPEC.slos[1], "2026-11", NOW)
    assert rep["error_budget_minutes"] == pytest.approx(43.2)
    assert rep["weeks"][2]["budget_remaining_minutes"] == pytest.approx(43.2 - 50)
    assert rep["exhausted_on"] == "2026-11-10"
    assert rep["verdict"] == "budget exhausted on 2026-11-10"


def test_a_month_without_samples_is_no_data(engine: Engine) -> None:
    rep = report.report(engine, SPEC.slos[0], "2026-09", NOW)
    assert rep["no_data"] is True
    assert rep["verdict"] == "no data"
    assert all(w["budget_used_minutes"] == 0 for w in rep["weeks"])


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "26-11", "november"])
def test_bad_months_are_refused(month: str) -> None:
    with pytest.raises(report.BadMonth):
        report.month_bounds(month)


def test_report_route(engine: Engine) -> None:
    with TestClient(create_app(ServerConfig(spec=SPEC), engine, clock=lambda: NOW, instrument=False)) as c:
        ok = c.get("/api/slo/relaxed/report", params={"month": "2026-11"})
        assert ok.status_code == 200
        assert ok.json()["budget_remaining_minutes"] == pytest.approx(156.0)
        assert c.get("/api/slo/nope/report", params={"month": "2026-11"}).status_code == 404
        assert c.get("/api/slo/relaxed/report", params={"month": "2026-13"}).status_code == 400
        assert c.get("/api/slo/relaxed/report", params={"month": "2027-01"}).status_code == 400
        assert c.get("/api/slo/relaxed/report").status_code == 422


@pytest.fixture
def server(engine: Engine) -> Iterator[str]:
    """The real server app over HTTP, so the CLI is tested through its actual client."""
    app = create_app(ServerConfig(spec=SPEC), engine, clock=lambda: NOW, instrument=False)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "server did not start"
    port = srv.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


def _runner() -> CliRunner:
    from lightkeeper.cli import _register

    if not any(g.name == "budget" for g in cli_app.registered_groups):
        _register()
    return CliRunner()


def test_cli_renders_table_md_and_json(server: str) -> None:
    runner = _runner()
    base = ["budget", "report", "--month", "2026-11", "--server", server]
    table = runner.invoke(cli_app, [*base, "--slo", "relaxed"])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert "verdict: met" in lines[0]
    assert "budget 216.0 min" in lines[0]
    w46 = next(line for line in lines if line.startswith("2026-W46"))
    assert w46.split()[2:4] == ["50.0", "166.0"]
    assert "api (2026-11-10)" in w46

    md = runner.invoke(cli_app, [*base, "--slo", "strict", "--format", "md"])
    assert md.exit_code == 0, md.output
    assert "verdict: budget exhausted on 2026-11-10" in md.output
    assert "| 2026-W46 (2026-11-09..2026-11-15) | 50.0 | -6.8 |" in md.output

    both = runner.invoke(cli_app, [*base, "--format", "json"])
    assert both.exit_code == 0, both.output
    assert [r["name"] for r in json.loads(both.output)] == ["relaxed", "strict"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--slo", "nope"], "unknown SLO 'nope'"),
        (["--month", "2026-13"], "is not YYYY-MM"),
        (["--format", "csv"], "is not one of"),
    ],
)
def test_cli_exit_2_with_a_clear_message(server: str, args: list[str], message: str) -> None:
    result = _runner().invoke(cli_app, ["budget", "report", "--month", "2026-11", "--server", server, *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_cli_exit_2_when_the_server_is_unreachable() -> None:
    port = services.closed_port()
    result = _runner().invoke(
        cli_app, ["budget", "report", "--month", "2026-11", "--server", f"http://127.0.0.1:{port}"]
    )
    assert result.exit_code == 2
    assert "cannot reach" in result.output
