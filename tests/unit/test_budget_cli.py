"""`lightkeeper budget check` exit codes against a local HTTP server serving `/sla/status`.

The Prometheus mode is exercised against a local fake speaking the Prometheus query API
(not a real prometheus binary: time did not allow it).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lightkeeper.cli import app
from lightkeeper.cli import budget as budget_cli

budget_cli.register(app) if not any(g.name == "budget" for g in app.registered_groups) else None
runner = CliRunner()
STATUS: dict[str, Any] = {
    "slos": [
        {"name": "availability", "error_budget_remaining_ratio": 0.8, "no_data": False},
        {"name": "latency", "error_budget_remaining_ratio": 0.1, "no_data": False},
        {"name": "quiet", "error_budget_remaining_ratio": None, "no_data": True},
    ]
}


@pytest.fixture()
def server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/sla/status"):
                body = json.dumps(STATUS).encode()
            elif self.path.startswith("/api/v1/query"):
                body = json.dumps(
                    {
                        "status": "success",
                        "data": {
                            "resultType": "vector",
                            "result": [{"metric": {"environment": "prod"}, "value": [0, "0.004"]}],
                        },
                    }
                ).encode()
            else:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def run(*args: str) -> Any:
    return runner.invoke(app, ["budget", "check", *args])


def test_passes_when_the_selected_budget_is_above(server: str) -> None:
    result = run("--server", server, "--slo", "availability", "--min-remaining", "25%")
    assert result.exit_code == 0, result.output
    assert "availability" in result.output and "80.0%" in result.output


def test_fails_when_one_budget_is_below(server: str) -> None:
    result = run("--server", server)
    assert result.exit_code == 1
    assert "FAIL  latency" in result.output and "10.0%" in result.output
    assert "quiet: no data" in result.output


def test_unknown_slo_is_exit_2(server: str) -> None:
    result = run("--server", server, "--slo", "nope")
    assert result.exit_code == 2
    assert "unknown SLO 'nope'" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ("--min-remaining", "lots"),
        ("--min-remaining", "120%"),
        ("--timeout", "0"),
        ("--prometheus", "http://127.0.0.1:1"),
    ],
)
def test_bad_arguments_are_exit_2(server: str, args: tuple[str, ...]) -> None:
    result = run("--server", server, *args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_unreachable_server_is_exit_2_within_the_timeout() -> None:
    result = run("--server", "http://127.0.0.1:9", "--timeout", "1")
    assert result.exit_code == 2
    assert "cannot reach" in result.output


def test_prometheus_mode_uses_the_recorded_period_ratio(server: str, tmp_path: Path) -> None:
    spec = tmp_path / "lightkeeper.yaml"
    spec.write_text(
        "service: svc\nenvironments:\n  prod:\n    targets: ['a:1']\n"
        "slos:\n  - name: avail\n    objective: 99.5\n    sli: {kind: availability}\n"
    )
    # error ratio 0.004 of a 0.005 budget: 20 % left.
    assert run("--prometheus", server, "--spec", str(spec), "--min-remaining", "15").exit_code == 0
    result = run("--prometheus", server, "--spec", str(spec), "--min-remaining", "25")
    assert result.exit_code == 1 and "avail (prod): 20.0%" in result.output
