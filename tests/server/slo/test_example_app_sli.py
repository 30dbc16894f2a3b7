"""SLOs over the example app's own `/metrics`: constructed traffic in, exact `/sla/status` numbers out.

The example app (`examples.saas_app`) runs under a real uvicorn on a temporary SQLite
file. Its `/api/flaky` route fails with a 500 on exactly every 40th call of a process
(`SAAS_FLAKY_RATE=0.025`, the app's deterministic failure schedule) and answers within
milliseconds; `/api/reports/slow` sleeps at least 0.2 s. So the test knows every
availability event (flaky 200 good, flaky 500 bad) and every latency event (a flaky
call is under the 0.2 s threshold, a slow report above it) it sends.

The first two tests drive `Scraper.scrape_once`, the unit `lightkeeper server`'s SLO
loop calls every scrape interval, with explicit scrape times all inside one 5-minute
count step: the period's counts are then Prometheus's raw `increase()`, which is exact
for a counter first seen at 0, so `/sla/status` must show the constructed numbers to
the last digit. The third runs that loop itself (`slo.loop.run`) in real time next to
a real `prometheus` running the rules `lightkeeper generate --profile test` writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from lightkeeper.server.config import ServerConfig
from lightkeeper.server.http.app import create_app
from lightkeeper.server.slo import evaluate, samples
from lightkeeper.server.slo import loop as slo_loop
from lightkeeper.server.slo.scraper import Scraper
from lightkeeper.spec.models import Spec
from lightkeeper.stack.generate import generate
from tests.support import services

FLAKY_EVERY = 40  # SAAS_FLAKY_RATE = 1/40: calls 40, 80, 120, ... of a process answer 500
THRESHOLD = 0.2  # latency SLO threshold: a catalogue bucket bound; slow reports sleep 0.2-1.2 s
PERIOD_SECONDS = 30 * 86400
AVAILABILITY, LATENCY = "flaky-availability", "report-latency"
OBJECTIVE = 95.0  # both SLOs: a 5 % budget, 2160 minutes over 30 days
# Midnight: a 5-minute grid point whose step holds no earlier sample, so every scrape the
# first two tests make (all within T0 + 5 min) leaves the period to the raw increase().
T0 = datetime(2026, 12, 1, tzinfo=UTC)
USER = {"email": "alice@example.com", "password": "demo-password"}  # seeded by the app

# SQLite only: every app start costs seconds, and test_embedded.py already runs the stored
# samples' math on both stores.
pytestmark = pytest.mark.parametrize("blank_engine", ["sqlite"], indirect=True)


def spec_for(target: str, **server: Any) -> Spec:
    return Spec.model_validate(
        {
            "service": "saas-api",
            "environments": {"test": {"targets": [target], "scrape_interval": "1s"}},
            "slos": [
                {
                    "name": AVAILABILITY,
                    "objective": OBJECTIVE,
                    "sli": {"kind": "availability", "routes": ["/api/flaky"]},
                },
                {
                    "name": LATENCY,
                    "objective": OBJECTIVE,
                    "sli": {
                        "kind": "latency",
                        "threshold_seconds": THRESHOLD,
                        "routes": ["/api/flaky", "/api/reports/slow"],
                    },
                },
            ],
            "server": server,
        }
    )


# The app's imports take 5-10 s on a loaded machine, three starts and a restart would
# spend most of the file's time there. This launcher imports the libraries once and
# forks a fresh process per start that runs `uvicorn.run` on the app: each start is a
# new process with its own, zeroed counters, as after a real restart. The app's own
# modules are imported in the child only, so each child builds its app from scratch.
_PRELOAD = (
    "fastapi",
    "openai",
    "sqlalchemy.orm",
    "sqlalchemy.dialects.sqlite",
    "structlog",
    "prometheus_client",
    "uvicorn",
    "lightkeeper",
    "lightkeeper.sdk.health",
    "lightkeeper.sdk.lifecycle",
    "lightkeeper.sdk.llm",
    "lightkeeper.sdk.middleware",
    "lightkeeper.sdk.rum",
    "lightkeeper.spec.loader",
)
_LAUNCHER = f"""
import contextlib, importlib, json, os, signal, sys
for name in {_PRELOAD!r}:
    with contextlib.suppress(ImportError):
        importlib.import_module(name)
import uvicorn
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps each child as it dies
print("ready", flush=True)
for line in sys.stdin:
    order = json.loads(line)
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        with contextlib.suppress(Exception):  # Linux: die with the launcher, which dies with the test
            import ctypes
            ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        os.environ.update(order["env"])
        out = os.open(order["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(out, 1)
        os.dup2(out, 2)
        try:
            uvicorn.run(order["app"], host="127.0.0.1", port=order["port"], access_log=False)
        finally:
            os._exit(0)
    print(pid, flush=True)
"""


class Launcher:
    """Starts app processes through the preloaded launcher; kills them by pid."""

    def __init__(self, log: Path) -> None:
        self.log = log
        env = {**os.environ}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(services.ROOT), env.get("PYTHONPATH")]))
        with log.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _LAUNCHER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=str(services.ROOT),
                env=env,
                text=True,
            )
        self.children: set[int] = set()
        assert self._answer() == "ready", log.read_text()[-3000:]

    def _answer(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def start(self, app: str, port: int, env: dict[str, str], log: Path) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"app": app, "port": port, "env": env, "log": str(log)}) + "\n")
        self.proc.stdin.flush()
        answer = self._answer()
        assert answer.isdigit(), f"the launcher died: {self.log.read_text()[-3000:]}"
        pid = int(answer)
        self.children.add(pid)
        return pid

    def kill(self, pid: int) -> None:
        """SIGKILL, then wait until the process is gone (and its port free)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while alive(pid):
            assert time.monotonic() < deadline, f"process {pid} survived SIGKILL"
            time.sleep(0.02)
        self.children.discard(pid)

    def close(self) -> None:
        for pid in list(self.children):
            self.kill(pid)
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    started = Launcher(tmp_path_factory.mktemp("launcher") / "launcher.log")
    try:
        yield started
    finally:
        started.close()


class ExampleApp:
    """`examples.saas_app.main:app` under uvicorn on a fixed port, killable and restartable there.

    The database file and the token secret outlive a restart (as they would in
    production); the request counters and the failure schedule start again from zero.
    """

    def __init__(self, launcher: Launcher, tmp: Path, flaky_every: int = FLAKY_EVERY) -> None:
        self.launcher = launcher
        self.flaky_every = flaky_every
        self.port = services.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "app.log"
        self.env = {
            "SAAS_DATABASE_URL": f"sqlite:///{tmp / 'app.db'}",
            "SAAS_FLAKY_RATE": repr(1 / flaky_every),
            "SAAS_SECRET_KEY": "test-only-secret-shared-by-restarts",
            "SAAS_ENVIRONMENT": "test",
        }
        self.pid: int | None = None
        self.flaky_calls = 0  # /api/flaky calls this process served: the failure schedule's position

    def spawn(self) -> None:
        self.pid = self.launcher.start("examples.saas_app.main:app", self.port, self.env, self.log)
        self.flaky_calls = 0

    def wait_ready(self) -> None:
        """uvicorn binds only after the app's start-up (tables, seed users), so the port is enough."""
        assert self.pid is not None
        try:
            services.wait_for_port(self.port, timeout=45)
        except TimeoutError:
            raise AssertionError(f"the example app did not start:\n{self.log.read_text()[-3000:]}") from None
        assert alive(self.pid), self.log.read_text()[-3000:]

    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    def kill(self) -> None:
        """SIGKILL: the process dies with whatever its counters held, as in a crash."""
        if self.pid is not None:
            self.launcher.kill(self.pid)
        self.pid = None

    def token(self) -> str:
        response = httpx.post(f"{self.base}/api/auth/login", json=USER, timeout=30)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])


@contextlib.contextmanager
def example_app(launcher: Launcher, tmp: Path) -> Iterator[ExampleApp]:
    app = ExampleApp(launcher, tmp)
    try:
        app.start()
        yield app
    finally:
        app.kill()


@dataclass
class Traffic:
    """What the test sent and saw, as SLO events.

    A flaky call the client saw answered in under the threshold was under it on the
    server too (the server's timer runs inside the client's); one the client saw take
    longer is `unsure` for latency (the app is then merely slow to answer, not wrong).
    """

    flaky_good: int = 0
    flaky_bad: int = 0
    slow: int = 0
    unsure: int = 0
    # (client-side completion time, "flaky" or "slow", answered 500)
    events: list[tuple[float, str, bool]] = field(default_factory=list)

    def __add__(self, other: Traffic) -> Traffic:
        return Traffic(
            self.flaky_good + other.flaky_good,
            self.flaky_bad + other.flaky_bad,
            self.slow + other.slow,
            self.unsure + other.unsure,
            self.events + other.events,
        )

    @property
    def availability(self) -> tuple[int, int]:
        """(good, total) availability events."""
        return self.flaky_good, self.flaky_good + self.flaky_bad

    @property
    def latency(self) -> tuple[int, int]:
        """(good, total) latency events, assuming every flaky call was under the threshold."""
        flaky = self.flaky_good + self.flaky_bad
        return flaky, flaky + self.slow


def send(app: ExampleApp, token: str, flaky: int, slow: int, pace: float = 0.0) -> Traffic:
    """`flaky` sequential /api/flaky calls (one per `pace` seconds) while `slow` slow reports
    run alongside, spread over the same time; checks every answer against the failure schedule."""
    headers = {"Authorization": f"Bearer {token}"}
    traffic = Traffic()
    lock = threading.Lock()

    def slow_report() -> None:
        response = httpx.get(f"{app.base}/api/reports/slow", headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        with lock:
            traffic.slow += 1
            traffic.events.append((time.monotonic(), "slow", False))

    every = max(1, flaky // slow) if slow else 0
    with (
        ThreadPoolExecutor(max_workers=max(1, slow)) as pool,
        httpx.Client(base_url=app.base, headers=headers, timeout=30) as client,
    ):
        futures: list[Future[None]] = []
        started = time.monotonic()
        for i in range(flaky):
            if slow and i % every == 0 and len(futures) < slow:
                futures.append(pool.submit(slow_report))
            if pace:
                time.sleep(max(0.0, started + i * pace - time.monotonic()))
            sent = time.monotonic()
            status = client.get("/api/flaky").status_code
            took = time.monotonic() - sent
            app.flaky_calls += 1
            failing = app.flaky_calls % app.flaky_every == 0
            assert status == (500 if failing else 200), (app.flaky_calls, status)
            with lock:
                if failing:
                    traffic.flaky_bad += 1
                else:
                    traffic.flaky_good += 1
                traffic.unsure += took >= THRESHOLD
                traffic.events.append((time.monotonic(), "flaky", failing))
        while len(futures) < slow:
            futures.append(pool.submit(slow_report))
        for future in futures:
            future.result()
    return traffic


def scrape(engine: Engine, spec: Spec, at: datetime) -> int:
    async def once() -> int:
        async with httpx.AsyncClient() as client:
            return await Scraper(engine, spec, "test", client).scrape_once(at)

    return asyncio.run(once())


def status(engine: Engine, spec: Spec, now: datetime) -> dict[str, dict[str, Any]]:
    app = create_app(ServerConfig(spec=spec), engine, clock=lambda: now, instrument=False)
    with TestClient(app) as client:
        return slos_of(client)


def slos_of(client: TestClient) -> dict[str, dict[str, Any]]:
    response = client.get("/sla/status")
    assert response.status_code == 200, response.text
    return {s["name"]: s for s in response.json()["slos"]}


def expected(good: float, total: float) -> dict[str, float]:
    """The `/sla/status` numbers for good of total events over the period, from first principles."""
    budget = (100 - OBJECTIVE) / 100
    minutes = budget * PERIOD_SECONDS / 60
    bad_ratio = (total - good) / total
    burn = bad_ratio / budget
    remaining = 1 - burn
    return {
        "sli_percent": 100 * good / total,
        "error_budget_minutes": minutes,
        "error_budget_remaining_ratio": remaining,
        "error_budget_remaining_minutes": remaining * minutes,
        "burn_rate": burn,
        "time_to_exhaustion_seconds": remaining * PERIOD_SECONDS / burn,
    }


def assert_exact(state: dict[str, Any], good: float, total: float) -> None:
    """Every number of one `slos` entry is the constructed traffic's, in every burn window too
    (all windows reach back before the first scrape, so each holds the whole traffic)."""
    want = expected(good, total)
    assert state["no_data"] is False
    assert state["source"] == "embedded"
    assert state["good_events"] == pytest.approx(good, abs=1e-9), state
    assert state["total_events"] == pytest.approx(total, abs=1e-9), state
    for name in (
        "sli_percent",
        "error_budget_minutes",
        "error_budget_remaining_ratio",
        "error_budget_remaining_minutes",
        "time_to_exhaustion_seconds",
    ):
        # the status rounds every number to 9 decimals
        assert state[name] == pytest.approx(want[name], rel=1e-12, abs=1e-8), (state["name"], name, state)
    burn = dict.fromkeys(state["burn_rates"], want["burn_rate"])
    assert state["burn_rates"] == pytest.approx(burn, rel=1e-12, abs=1e-8)
    assert state["error_budget_minutes"] == 2160.0


def latency_good(state: dict[str, Any], traffic: Traffic) -> float:
    """The constructed latency good count; when a flaky call took the client over the threshold,
    the server may have timed it either side, so the reported count must lie between."""
    good, _ = traffic.latency
    if traffic.unsure == 0:
        return good
    assert good - traffic.unsure <= state["good_events"] <= good, (state, traffic.unsure)
    return float(state["good_events"])


@pytest.mark.timeout(90)
def test_constructed_traffic_on_the_example_app_gives_exact_sli_and_budget(
    engine: Engine, tmp_path: Path, launcher: Launcher
) -> None:
    with example_app(launcher, tmp_path) as app:
        spec = spec_for(f"127.0.0.1:{app.port}")
        token = app.token()  # the login route is outside both SLOs
        assert scrape(engine, spec, T0) == 1  # nothing counted yet: both SLOs start from 0
        traffic = send(app, token, flaky=200, slow=4)
        assert scrape(engine, spec, T0 + timedelta(seconds=15)) == 1
        assert scrape(engine, spec, T0 + timedelta(seconds=30)) == 1  # no traffic since: nothing changes

    assert traffic.availability == (195, 200)  # calls 40, 80, ..., 200 failed
    assert traffic.latency == (200, 204)
    slos = status(engine, spec, T0 + timedelta(seconds=40))
    assert set(slos) == {AVAILABILITY, LATENCY}
    assert_exact(slos[AVAILABILITY], 195, 200)
    # 2.5 % bad against a 5 % budget: half of 2160 minutes left, at burn rate 0.5
    assert slos[AVAILABILITY]["sli_percent"] == pytest.approx(97.5)
    assert slos[AVAILABILITY]["error_budget_remaining_minutes"] == pytest.approx(1080.0)
    assert slos[AVAILABILITY]["time_to_exhaustion_seconds"] == pytest.approx(PERIOD_SECONDS)
    assert slos[AVAILABILITY]["as_of"] == "2026-12-01T00:00:30Z"
    assert_exact(slos[LATENCY], latency_good(slos[LATENCY], traffic), 204)


@pytest.mark.timeout(120)
def test_restart_and_scrape_gap_count_what_increase_can_see(
    engine: Engine, tmp_path: Path, launcher: Launcher
) -> None:
    """Scrapes every 15 s (virtual), a crash and restart between two of them, then a 90 s gap.

    What is lost, by design (Prometheus loses the same): the requests the old process
    served after the last scrape that reached it. Its counters die with it unscraped,
    and the restarted process counts from 0. Everything else is counted once: the drop
    at the restart adds back the value before it (the old process's last scraped
    counts), and the gap only widens the interval between two samples of a counter
    that kept counting. A reset is visible only because the new process's first scrape
    reads less than the old one's last; phase B is kept smaller than phase A for that.

    The gap lies inside one 5-minute count step. A gap spanning a whole step would drop
    that step's traffic from the period's count (no count record spans it, see
    `slo_math.grid_increase`), as it does in the generated rules; nothing is invented.
    """
    at = [T0 + timedelta(seconds=15 * i) for i in range(11)]
    app = ExampleApp(launcher, tmp_path)
    try:
        app.start()
        spec = spec_for(f"127.0.0.1:{app.port}")
        token = app.token()
        assert scrape(engine, spec, at[0]) == 1
        a = send(app, token, flaky=80, slow=2)  # calls 40 and 80 fail
        assert scrape(engine, spec, at[1]) == 1
        lost = send(app, token, flaky=40, slow=1)  # calls 81-120, 120 fails: never scraped
        app.kill()
        assert scrape(engine, spec, at[2]) == 0  # a missed scrape: the target is down, nothing stored

        app.start()  # same port, same database; counters and failure schedule from 0
        b = send(app, token, flaky=40, slow=1)  # call 40 fails
        assert scrape(engine, spec, at[3]) == 1
        after_restart = {s.name: evaluate.state(engine, s, at[3]) for s in spec.slos}

        # a scrape gap: no scrape at 60, 75, ..., 120 s while the app keeps serving
        c = send(app, token, flaky=40, slow=1)  # calls 41-80, 80 fails
        assert scrape(engine, spec, at[9]) == 1
        assert scrape(engine, spec, at[10]) == 1
    finally:
        app.kill()

    assert (a.availability, lost.availability, b.availability, c.availability) == (
        (78, 80),
        (39, 40),
        (39, 40),
        (39, 40),
    )
    stored = samples.read(engine, AVAILABILITY, T0, at[10])[f"127.0.0.1:{app.port}"]
    assert [(s.at, s.good, s.total) for s in stored] == [
        (at[0], 0, 0),
        (at[1], 78, 80),
        (at[3], 39, 40),  # the restart: a drop, never a negative increase
        (at[9], 78, 80),
        (at[10], 78, 80),
    ]

    # right after the restart: the old process's 80 and the new one's 40, not 40 - 80 nor 40
    mid = after_restart[AVAILABILITY]
    assert (mid["good_events"], mid["total_events"]) == pytest.approx((78 + 39, 80 + 40))
    assert all(v >= 0 for v in mid["burn_rates"].values())

    seen = a + b + c
    assert seen.availability == (156, 160)
    slos = status(engine, spec, at[10] + timedelta(seconds=5))
    assert_exact(slos[AVAILABILITY], *seen.availability)
    assert_exact(slos[LATENCY], latency_good(slos[LATENCY], seen), seen.latency[1])
    # never invented: below everything the app served, by exactly the unscraped phase
    everything = seen + lost
    assert slos[AVAILABILITY]["total_events"] == everything.availability[1] - lost.availability[1]
    assert slos[LATENCY]["total_events"] == everything.latency[1] - lost.latency[1]


# --- Prometheus mode --------------------------------------------------------------------

SCRAPE_SECONDS = 1.0  # the test profile's scrape and evaluation interval, and the embedded loop's
STEP_SECONDS = 5.0  # the test profile's count-record step (5 minutes / 60)


@contextlib.contextmanager
def slo_loop_running(config: ServerConfig, engine: Engine) -> Iterator[None]:
    """`lightkeeper server`'s SLO loop (scrape, then step the alerts, every interval) in a thread."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    tasks: list[asyncio.Task[None]] = []

    async def main() -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            await slo_loop.run(config, engine, client)

    def run() -> None:
        asyncio.set_event_loop(loop)
        tasks.append(loop.create_task(main()))
        ready.set()
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(tasks[0])
        loop.close()

    thread = threading.Thread(target=run, name="slo-loop", daemon=True)
    thread.start()
    ready.wait(5)
    try:
        yield
    finally:
        loop.call_soon_threadsafe(tasks[0].cancel)
        thread.join(timeout=10)
        assert not thread.is_alive()
        assert tasks[0].cancelled() or tasks[0].exception() is None, tasks[0]


def most_in_one_interval(times: list[float]) -> int:
    """The most of these instants any one scrape interval holds."""
    ordered = sorted(times)
    most, lo = 0, 0
    for hi, t in enumerate(ordered):
        while t - ordered[lo] > SCRAPE_SECONDS:
            lo += 1
        most = max(most, hi - lo + 1)
    return most


def ratio_bounds(
    good: float, total: float, events: list[tuple[float, bool]], unsure: int = 0
) -> tuple[float, float]:
    """The error ratios of counts that differ from good of total by at most one scrape
    interval's traffic: up to that many events more or fewer, and bad ones among them.
    `unsure` good events may have been bad (see `Traffic`)."""
    q = most_in_one_interval([t for t, _ in events])
    q_bad = most_in_one_interval([t for t, bad in events if bad])
    bad = total - good
    return max(0.0, bad - q_bad) / (total + q), (bad + q_bad + unsure) / (total - q)


def server_app(engine: Engine, spec: Spec) -> FastAPI:
    return create_app(ServerConfig(spec=spec), engine, clock=lambda: datetime.now(UTC), instrument=False)


def stored_any(engine: Engine) -> bool:
    now = datetime.now(UTC)
    return bool(samples.read(engine, AVAILABILITY, now - timedelta(minutes=5), now))


def up(prometheus: str, job: str) -> bool:
    """Whether Prometheus has scraped the job's target successfully (False while it starts)."""
    try:
        response = httpx.get(f"{prometheus}/api/v1/query", params={"query": f'up{{job="{job}"}}'}, timeout=5)
        result = response.json()["data"]["result"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return False
    return bool(result) and result[0]["value"][1] == "1"


@pytest.mark.timeout(120)
def test_prometheus_mode_matches_embedded_mode_on_the_example_app(
    engine: Engine, tmp_path: Path, launcher: Launcher
) -> None:
    """Steady traffic for 4 s: a flaky call every 20 ms, every 8th failing, and a slow report
    every quarter second.

    Prometheus's period is the sum of 5 s count records (the test profile's 5 minutes),
    each an `increase()` extrapolated to its step's edges, and it misses the first
    scraped value of a series that appears mid-window (the first 500, the first slow
    report); the embedded store sums an SLO's series before storing them. The two may
    therefore differ where traffic starts and stops, by one scrape interval's traffic,
    and the test allows exactly that: up to the most events (and bad events) any one
    second of the constructed traffic held. Failures are denser than in the tests above
    so that one interval holds several bad events, not a single one the first-series
    loss alone would use up. The burn rates are not compared: Prometheus's windows are
    the profile's (divided by 60), so they cover different stretches of time.
    """
    app = ExampleApp(launcher, tmp_path, flaky_every=8)
    target = f"127.0.0.1:{app.port}"
    embedded_spec = spec_for(target)
    out = tmp_path / "observability"
    log = tmp_path / "prometheus.log"
    try:
        app.spawn()  # starts while the rules are written and Prometheus starts
        generate(embedded_spec, out, "test")
        with contextlib.ExitStack() as stack:
            prometheus = out / "prometheus" / "prometheus.yml"
            url = stack.enter_context(services.prometheus_server(prometheus, tmp_path / "tsdb", log))
            stack.enter_context(slo_loop_running(ServerConfig(spec=embedded_spec), engine))
            app.wait_ready()
            token = app.token()
            remote_spec = spec_for(target, prometheus_url=url, prometheus_window_scale=60)
            remote_client = stack.enter_context(TestClient(server_app(engine, remote_spec)))
            local_client = stack.enter_context(TestClient(server_app(engine, embedded_spec)))
            deadline = time.monotonic() + 20
            while not (up(url, "saas-api-test") and stored_any(engine)):
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.2)

            traffic = send(app, token, flaky=200, slow=16, pace=0.02)

            # Prometheus's period holds the whole traffic once the first scrape after it (within
            # a scrape interval; timestamped when it starts) is in a count record at a grid
            # point, i.e. was ingested before the evaluation the subquery takes at that point,
            # and the period's rule has been evaluated after it. Then two equal readings.
            point = math.ceil((time.time() + 2.5 * SCRAPE_SECONDS) / STEP_SECONDS) * STEP_SECONDS
            time.sleep(max(0.0, point + 1.5 * SCRAPE_SECONDS - time.time()))
            previous: dict[str, Any] | None = None
            deadline = time.monotonic() + 20
            while True:
                remote = slos_of(remote_client)
                reading = {n: remote[n]["sli_percent"] for n in remote}
                if previous == reading and None not in reading.values():
                    break
                assert time.monotonic() < deadline, (remote, log.read_text()[-3000:])
                previous = reading
                time.sleep(SCRAPE_SECONDS)
            local = slos_of(local_client)
    finally:
        app.kill()

    assert {s["source"] for s in remote.values()} == {"prometheus"}
    assert {s["source"] for s in local.values()} == {"embedded"}
    checks = {
        AVAILABILITY: (
            traffic.availability,
            [(t, failed) for t, kind, failed in traffic.events if kind == "flaky"],
        ),
        LATENCY: (traffic.latency, [(t, kind == "slow") for t, kind, _ in traffic.events]),
    }
    for name, ((good, total), events) in checks.items():
        mine, theirs = local[name], remote[name]
        assert mine["no_data"] is theirs["no_data"] is False
        assert theirs["source_error"] is None
        # the embedded mode counted the constructed traffic, to within one interval's
        low, high = ratio_bounds(good, total, events, traffic.unsure if name == LATENCY else 0)
        assert low <= 1 - mine["sli_percent"] / 100 <= high, (name, mine, traffic.unsure)
        # and Prometheus the embedded mode's counts, to within one interval's
        low, high = ratio_bounds(mine["good_events"], mine["total_events"], events)
        ratio = 1 - theirs["sli_percent"] / 100
        assert low <= ratio <= high, (name, ratio, low, high, mine)
        # the budget follows from the ratio by the same math in both modes
        assert theirs["error_budget_minutes"] == mine["error_budget_minutes"] == 2160.0
        for mode in (mine, theirs):
            want = expected(mode["sli_percent"], 100)
            assert mode["error_budget_remaining_ratio"] == pytest.approx(
                want["error_budget_remaining_ratio"], rel=1e-6
            )
            assert mode["error_budget_remaining_minutes"] == pytest.approx(
                want["error_budget_remaining_minutes"], rel=1e-6
            )
