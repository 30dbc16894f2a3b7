"""The demo's monitor: `lightkeeper server` watching the example app, as a child process.

The demo talks to the server the way a user would: a spec file, the CLI, and the
HTTP API (`/api/probes`). That keeps `lightkeeper.demo` independent of the server's
internals (the import contract forbids importing them) and shows the real thing.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import yaml

from lightkeeper.demo.app_process import DemoError, exit_with_parent, log_tail, stop

PROBE_INTERVAL_SECONDS = 5
# The server scrapes the app's /metrics this often for the SLOs (production: 15 s or more).
SCRAPE_INTERVAL_SECONDS = 1
# SLOs a run of a few seconds can show a real budget for: the example app's /api/flaky
# fails one call in five (about 1 % of the demo's requests) and its slow report often
# takes over half a second, so a stricter objective would show every budget overspent.
DEMO_SLOS: list[dict[str, Any]] = [
    {
        "name": "availability",
        "description": "Requests answered without a 5xx.",
        "objective": 95,
        "period": "30d",
        "sli": {"kind": "availability"},
    },
    {
        "name": "content-latency",
        "description": "Content reads and writes answered within 500 ms.",
        "objective": 95,
        "period": "30d",
        "sli": {"kind": "latency", "threshold_seconds": 0.5, "route_group": "content"},
    },
]
# The server prints this once it listens; with --port 0 it is the only way to learn the port.
_URL_LINE = re.compile(r"status page at (http://\S+)")
_CLI = "import sys; from lightkeeper.cli import main; sys.argv[0] = 'lightkeeper'; main()"
PASSWORD_ENV = "LIGHTKEEPER_DEMO_DB_PASSWORD"  # noqa: S105 (a variable name, not a password)


@dataclass(frozen=True)
class ProbeStatus:
    name: str
    type: str
    state: str
    last_latency_ms: float | None
    last_error: str | None


@dataclass(frozen=True)
class SloStatus:
    name: str
    objective_percent: float | None
    sli_percent: float | None
    error_budget_minutes: float | None
    error_budget_remaining_minutes: float | None
    error_budget_remaining_ratio: float | None
    firing: list[str]
    no_data: bool


@dataclass(frozen=True)
class MonitorSummary:
    status_page_url: str
    probes: list[ProbeStatus]
    slos: list[SloStatus] = field(default_factory=list)


@dataclass(frozen=True)
class RunningMonitor:
    status_page_url: str
    log_path: Path
    process: subprocess.Popen[bytes]


def demo_probes(app_url: str, database_url: str, environ: Mapping[str, str]) -> list[dict[str, Any]]:
    """Probes of the example app and of the dependencies it was started with.

    A PostgreSQL password never goes into the spec file: the probe names the variable
    that holds it (`password_env`), set only in the server's environment.
    """
    every = {"interval_seconds": PROBE_INTERVAL_SECONDS, "timeout_seconds": 3}
    probes: list[dict[str, Any]] = [
        {
            "name": "app-ready",
            "type": "http",
            "target": f"{app_url}/health/ready",
            "component": "Example app",
            **every,
        },
        {
            "name": "app-health",
            "type": "http",
            "target": f"{app_url}/health",
            "json_path_equals": {"$.status": "pass"},
            "component": "Example app",
            **every,
        },
    ]
    parts = urlsplit(database_url)
    if parts.scheme.split("+")[0] in ("postgresql", "postgres"):
        netloc = parts.hostname or "127.0.0.1"
        if parts.username:
            netloc = f"{parts.username}@{netloc}"
        if parts.port:
            netloc = f"{netloc}:{parts.port}"
        probe: dict[str, Any] = {
            "name": "postgres",
            "type": "postgres",
            "target": urlunsplit(("postgresql", netloc, parts.path, "", "")),
            "component": "Database",
            **every,
        }
        if parts.password:
            probe["password_env"] = PASSWORD_ENV
        probes.append(probe)
    redis_url = environ.get("SAAS_REDIS_URL")
    if redis_url:
        redis = urlsplit(redis_url)
        target = f"{redis.hostname or '127.0.0.1'}:{redis.port or 6379}"  # no password in the spec
        probes.append({"name": "redis", "type": "redis", "target": target, "component": "Queue", **every})
    return probes


def write_spec(path: Path, app_url: str, probes: list[dict[str, Any]]) -> None:
    spec = {
        "service": "saas-api",
        "environments": {
            "prod": {"targets": [urlsplit(app_url).netloc], "scrape_interval": f"{SCRAPE_INTERVAL_SECONDS}s"}
        },
        "route_groups": {"content": ["/api/workspaces/{workspace_id}/items", "/api/items/{item_id}"]},
        "slos": DEMO_SLOS,
        "probes": probes,
    }
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")


@contextlib.contextmanager
def monitor(
    *, app_url: str, database_url: str, workdir: Path, port: int = 0, ready_timeout: float = 60.0
) -> Iterator[RunningMonitor]:
    """Start `lightkeeper server` on SQLite in `workdir`; stop it on exit."""
    spec_path = workdir / "lightkeeper.yaml"
    write_spec(spec_path, app_url, demo_probes(app_url, database_url, os.environ))
    log_path = workdir / "server.log"
    env = {k: v for k, v in os.environ.items() if k != "LIGHTKEEPER_DB_URL"}
    password = urlsplit(database_url).password
    if password:
        env[PASSWORD_ENV] = password
    command = [
        *[sys.executable, "-c", _CLI, "server"],
        *["--spec", str(spec_path), "--db", f"sqlite:///{workdir / 'monitor.db'}", "--port", str(port)],
    ]
    secrets = (password,) if password else ()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir, preexec_fn=exit_with_parent
        )
    try:
        url = _wait_listening(process, log_path, ready_timeout, secrets)
        yield RunningMonitor(url, log_path, process)
    finally:
        stop(process)


def _wait_listening(
    process: subprocess.Popen[bytes], log_path: Path, timeout: float, secrets: tuple[str, ...]
) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _URL_LINE.search(log_path.read_text(errors="replace"))
        if found:
            return found.group(1)
        code = process.poll()
        if code is not None:
            tail = log_tail(log_path, secrets=secrets)
            raise DemoError(f"the lightkeeper server exited (code {code}) at start. Its log:\n{tail}")
        time.sleep(0.1)
    raise DemoError(
        f"the lightkeeper server did not listen within {timeout:.0f} s. Its log:\n{log_tail(log_path)}"
    )


def read_probes(running: RunningMonitor, *, timeout: float = 30.0) -> MonitorSummary:
    """Each probe's state once every probe has run at least once."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    with httpx.Client(timeout=5.0) as client:
        while time.monotonic() < deadline:
            try:
                response = client.get(f"{running.status_page_url.rstrip('/')}/api/probes")
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            else:
                if response.status_code == 200:
                    probes = parse_probes(response.json())
                    if probes and all(p.state != "unknown" for p in probes):
                        return MonitorSummary(running.status_page_url, probes)
                    last = "some probes have not run yet"
                else:
                    last = f"HTTP {response.status_code}"
            time.sleep(0.2)
    raise DemoError(
        f"the server's probes had no result after {timeout:.0f} s ({last}). "
        f"Last lines of its log:\n{log_tail(running.log_path)}"
    )


def parse_probes(document: Any) -> list[ProbeStatus]:
    """`/api/probes` as the demo shows it; anything but a list of objects reads as no probes."""
    if not isinstance(document, list):
        return []
    return [
        ProbeStatus(
            name=str(item.get("name", "?")),
            type=str(item.get("type", "?")),
            state=str(item.get("state", "unknown")),
            last_latency_ms=item.get("last_latency_ms"),
            last_error=item.get("last_error"),
        )
        for item in document
        if isinstance(item, dict)
    ]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def parse_slos(document: Any) -> list[SloStatus]:
    """The `slos` list of `/sla/status`; anything malformed reads as no SLOs or null numbers."""
    items = document.get("slos") if isinstance(document, dict) else None
    if not isinstance(items, list):
        return []
    return [
        SloStatus(
            name=str(item.get("name", "?")),
            objective_percent=_number(item.get("objective_percent")),
            sli_percent=_number(item.get("sli_percent")),
            error_budget_minutes=_number(item.get("error_budget_minutes")),
            error_budget_remaining_minutes=_number(item.get("error_budget_remaining_minutes")),
            error_budget_remaining_ratio=_number(item.get("error_budget_remaining_ratio")),
            firing=[str(tier) for tier in item.get("firing") or []],
            no_data=bool(item.get("no_data", True)),
        )
        for item in items
        if isinstance(item, dict)
    ]


def read_slos(running: RunningMonitor, summary: MonitorSummary, *, timeout: float = 15.0) -> MonitorSummary:
    """`summary` with each SLO's budget, once the server has scraped the traffic just sent.

    Called after the traffic ends: two scrape intervals later the server has a sample
    taken after the last request, so the budget covers the whole run.
    """
    time.sleep(2 * SCRAPE_INTERVAL_SECONDS + 0.5)
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    with httpx.Client(timeout=5.0) as client:
        while time.monotonic() < deadline:
            try:
                response = client.get(f"{running.status_page_url.rstrip('/')}/sla/status")
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            else:
                if response.status_code == 200:
                    slos = parse_slos(response.json())
                    if slos and not any(s.no_data for s in slos):
                        return replace(summary, slos=slos)
                    last = "no SLO has data yet"
                else:
                    last = f"HTTP {response.status_code}"
            time.sleep(SCRAPE_INTERVAL_SECONDS)
    raise DemoError(
        f"the server had no SLO numbers after {timeout:.0f} s ({last}). "
        f"Last lines of its log:\n{log_tail(running.log_path)}"
    )
