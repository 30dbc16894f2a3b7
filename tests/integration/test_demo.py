"""`lightkeeper demo` as a user runs it: a subprocess, a real uvicorn child, real traffic."""

from __future__ import annotations

import json
import math
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from genai_prices.data_snapshot import get_snapshot
from genai_prices.types import TieredPrices

from lightkeeper import catalogue
from lightkeeper.demo.llm_fake import DEFAULT_OPENAI_USAGE
from tests.support import services

pytestmark = pytest.mark.integration

# The console script `pip install` puts next to the interpreter, as a user would run it.
_SCRIPT = Path(sys.executable).with_name("lightkeeper")
_FALLBACK = "import sys; from lightkeeper.cli import main; sys.argv[0] = 'lightkeeper'; main()"
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-c", _FALLBACK]


def demo(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, "demo", *args], capture_output=True, text=True, timeout=timeout, cwd=services.ROOT
    )


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def sent_by_series(summary: dict[str, Any]) -> Counter[tuple[str, str, str]]:
    return Counter(
        {(r["method"], r["route"], r["status_code"]): r["count"] for r in summary["traffic"]["requests"]}
    )


def test_json_summary_matches_what_the_generator_sent() -> None:
    port = services.free_port()
    result = demo("--duration", "5", "--json", "--port", str(port))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)  # stdout is nothing but the JSON document
    sent = sent_by_series(summary)
    http = summary["http"]

    # what the generator counted and what the app counted on /metrics agree, series by series
    total = sum(sent.values())
    check = summary["reconciliation"]
    assert check == {"sent": total, "seen": http["total_requests"], "matches": True, "differences": []}
    assert summary["traffic"]["sent"] == http["total_requests"] == sum(sent.values())
    assert summary["traffic"]["transport_errors"] == {}
    # ~250 at 50/s for 5 s. The floor only proves load was applied: on a starved machine the
    # generator backs off when 64 requests are in flight (speed is measured in bench/, not here).
    assert http["total_requests"] >= 50
    actions = sum(summary["traffic"]["actions"].values())
    assert summary["achieved_rps"] == pytest.approx(actions / summary["duration_seconds"], abs=0.5)

    # the status mix, recomputed independently from the generator's own tally
    by_code: Counter[str] = Counter()
    for (_, _, code), count in sent.items():
        by_code[code] += count
    assert http["by_status_code"] == dict(sorted(by_code.items()))
    classes = http["by_status_class"]
    assert classes["2xx"] > 0 and classes["4xx"] > 0
    assert http["error_rate"] == pytest.approx(classes["5xx"] / http["total_requests"])

    # /api/flaky fails exactly one call in five (the app's default SAAS_FLAKY_RATE)
    flaky = {code: count for (method, route, code), count in sent.items() if route == "/api/flaky"}
    calls = flaky.get("200", 0) + flaky.get("500", 0)  # calls that reached the endpoint
    assert calls > 0
    assert flaky.get("500", 0) == math.floor(calls * 0.2) == classes["5xx"]

    # scanners hit raw paths; the app reports them all under one route value
    assert sent[("GET", catalogue.UNMATCHED_ROUTE, "404")] > 0
    assert not [route for (_, route, _) in sent if "wp-login" in route or ".env" in route]

    latency = http["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"]
    slow_reports = sent[("GET", "/api/reports/slow", "200")]
    if slow_reports > 0.01 * total:  # ~3 % of the mix: then the slowest 1 % all slept >= 0.2 s
        assert latency["p99"] >= 200
    top = http["top_routes"]
    assert top == sorted(top, key=lambda r: -r["requests"])
    assert {r["route"] for r in top} <= {route for (_, route, _) in sent}

    assert summary["service"] == {"service": "saas-api", "environment": "demo", "version": "1.4.2"}
    assert summary["health"]["status_code"] == 200
    assert summary["health"]["body"]["status"] == "pass"
    assert summary["health"]["body"]["checks"]["sqlite"]["status"] == "pass"
    assert summary["base_url"] == f"http://127.0.0.1:{port}"
    assert not listening(port), "the example app was left running"

    # the server watched the app: each probe ran and found it up
    monitor = summary["monitor"]
    states = {p["name"]: (p["type"], p["state"], p["last_error"]) for p in monitor["probes"]}
    assert states == {"app-ready": ("http", "up", None), "app-health": ("http", "up", None)}
    server_port = int(monitor["status_page_url"].rsplit(":", 1)[1].strip("/"))
    assert not listening(server_port), "the lightkeeper server was left running"
    check_product_signals(summary, sent)


def per_million(model: str, key: str) -> Decimal:
    """USD per million tokens from genai-prices' table, read here independently of the SDK."""
    _, info = get_snapshot().find_provider_model(model, None, "openai", None)
    value = getattr(info.get_prices(datetime.now(UTC)), key)
    return value.base if isinstance(value, TieredPrices) else value


def check_product_signals(summary: dict[str, Any], sent: Counter[tuple[str, str, str]]) -> None:
    """LLM cost, usage counts, workflow gauges and SLO budgets carry the run's real numbers."""
    product = summary["product"]
    # every answered summary request made one priced LLM call against the local fake
    calls = sent[("POST", "/api/items/{item_id}/summary", "200")]
    assert calls > 0
    [llm] = product["llm"]
    assert (llm["provider"], llm["model"], llm["requests"]) == ("openai", "gpt-4o-mini", {"ok": calls})
    usage = DEFAULT_OPENAI_USAGE
    one_call = (
        usage["prompt_tokens"] * per_million("gpt-4o-mini", "input_mtok")
        + usage["completion_tokens"] * per_million("gpt-4o-mini", "output_mtok")
    ) / Decimal(1_000_000)
    assert llm["cost_usd"] > 0
    assert llm["cost_usd"] == pytest.approx(float(one_call * calls), rel=1e-9)

    # usage events: exactly the successful writes the generator made
    counts = product["usage"]
    assert counts["login_succeeded"] == sent[("POST", "/api/auth/login", "200")] > 0
    assert counts["content_item_created"] == sent[("POST", "/api/workspaces/{workspace_id}/items", "201")] > 0
    assert counts["comment_added"] == sent[("POST", "/api/items/{item_id}/comments", "201")]
    assert counts["content_item_approved"] == sent[("POST", "/api/items/{item_id}/approve", "200")]
    assert counts["workspace_created"] == sent[("POST", "/api/orgs/{org_id}/workspaces", "201")]
    assert counts["feedback_report_submitted"] == 0  # declared, never sent: present at 0
    assert product["auth_attempts"]["password/success"] == counts["login_succeeded"]
    assert product["auth_attempts"]["password/failure"] == sent[("POST", "/api/auth/login", "401")]
    flaky = product["dependencies"]["inventory sync"]
    assert flaky.get("other", 0) == sent[("GET", "/api/flaky", "500")]

    # workflow gauges: the seeded items plus every one created, by status, none stuck yet
    statuses = product["workflow"]["content_item"]
    assert sum(statuses.values()) >= counts["content_item_created"]
    assert statuses["other"] == 0
    assert product["stuck"]["content_item"] == {"30m": 0, "24h": 0}

    # SLO budgets from the server, which scraped the app itself
    slos = {s["name"]: s for s in summary["monitor"]["slos"]}
    assert set(slos) == {"availability", "content-latency"}
    availability = slos["availability"]
    assert availability["no_data"] is False and availability["error_budget_minutes"] == pytest.approx(2160)
    # /api/flaky fails, so some of the 5 % budget is spent, but not all of it
    assert 0 < availability["error_budget_remaining_ratio"] < 1
    assert availability["error_budget_remaining_minutes"] == pytest.approx(
        availability["error_budget_remaining_ratio"] * 2160, abs=0.01
    )


def test_human_summary_on_stdout() -> None:
    result = demo("--duration", "2")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    expected = [
        "saas-api 1.4.2 (demo)", "error rate (5xx)", "latency p99", "exact match",
        "Top routes by traffic", "/api/workspaces/{workspace_id}/items", "Health: pass",
        "LLM calls (priced offline)", "gpt-4o-mini", "Workflow (sampled from the database)",
        "Usage events and sign-ins", "login_succeeded", "SLOs (lightkeeper server)", "availability",
    ]  # fmt: skip
    for text in expected:
        assert text in out, text
    assert "Example app ready at http://127.0.0.1:" in result.stderr
    # the summary ends with each probe's state and the status page URL
    probes = out[out.index("Probes (lightkeeper server)") :]
    assert re.search(r"app-ready\s+http\s+up", probes) and re.search(r"app-health\s+http\s+up", probes)
    assert re.search(r"Status page: http://127\.0\.0\.1:\d+/\s*$", out)


def test_keep_running_leaves_the_app_and_the_status_page_up_until_ctrl_c() -> None:
    port = services.free_port()
    proc = subprocess.Popen(
        [*COMMAND, "demo", "--port", str(port), "--duration", "1", "--keep-running"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=services.ROOT,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 120
        while not (found := re.search(r"Status page: (http://\S+)", "".join(lines))):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
            lines.append(proc.stdout.readline())
        page = httpx.get(found.group(1), timeout=10)
        assert page.status_code == 200 and "Example app" in page.text
        probes = httpx.get(f"{found.group(1)}api/probes", timeout=10).json()
        assert {p["name"]: p["state"] for p in probes} == {"app-ready": "up", "app-health": "up"}
        assert httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=10).status_code == 200
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopped the example app and the server" in err
    assert not listening(port)
    assert not listening(int(found.group(1).rsplit(":", 1)[1].strip("/")))


def test_runs_against_postgresql(postgres_url: str) -> None:
    result = demo("--duration", "2", "--json", "--database-url", postgres_url)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["reconciliation"]["matches"]
    assert summary["health"]["body"]["checks"]["postgres"]["status"] == "pass"
    assert summary["database"] == postgres_url  # no password in it to hide
    probes = {p["name"]: p["state"] for p in summary["monitor"]["probes"]}
    assert probes == {"app-ready": "up", "app-health": "up", "postgres": "up"}


def test_busy_port_is_reported_before_anything_starts() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        started = time.monotonic()
        result = demo("--port", str(port), "--duration", "30", "--json")
        assert time.monotonic() - started < 15
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "--port 0" in result.stderr
    assert result.stdout == ""


def test_app_that_cannot_start_shows_its_log_without_the_password() -> None:
    port = services.free_port()
    password = "s3cr3t-Pw-9f1e"
    url = f"postgresql+psycopg://demo:{password}@127.0.0.1:{services.closed_port()}/nowhere"
    result = demo("--port", str(port), "--database-url", url, "--duration", "30", timeout=90)
    assert result.returncode == 1
    err = result.stderr
    assert "the example app exited" in err and "before it was ready" in err
    assert "Connection refused" in err  # the cause, from the tail of the app's log
    assert "Application startup failed" in err
    assert password not in err and password not in result.stdout
    assert "demo:***@127.0.0.1" in err
    assert not listening(port)


@pytest.mark.parametrize(
    ("signum", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_interrupt_stops_the_app(signum: signal.Signals, exit_code: int) -> None:
    port = services.free_port()
    proc = subprocess.Popen(
        [*COMMAND, "demo", "--port", str(port), "--duration", "120"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=services.ROOT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, "the example app never became ready"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        time.sleep(1.0)  # traffic is flowing
        proc.send_signal(signum)  # only the demo process, as a supervisor would
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == exit_code
    assert "interrupted; the example app was stopped" in err
    assert not listening(port)


def test_app_is_stopped_even_when_the_demo_is_killed() -> None:
    """SIGKILL runs no cleanup at all; the child must still go (Linux parent-death signal)."""
    port = services.free_port()
    proc = subprocess.Popen(
        [*COMMAND, "demo", "--port", str(port), "--duration", "120"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=services.ROOT,
    )  # fmt: skip
    try:
        services.wait_for_port(port, timeout=60)
        time.sleep(0.5)
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 15
    while listening(port):
        assert time.monotonic() < deadline, "the example app outlived the killed demo"
        time.sleep(0.1)
