"""RUM beacon endpoint: beacons per second and p99 latency, next to a bare FastAPI anchor.

Run from the repository root:

    .venv/bin/python -m bench.rum_throughput [--seconds 8] [--rounds 3] [--connections 4]

Two servers, each uvicorn in one process (uvloop + httptools), started once:

- **lightkeeper**: the example app (`examples.saas_app`, SQLite in a temporary
  directory) as it ships, `instrument(..., rum_enabled=True)`, taking beacons at
  `POST /lightkeeper/rum`: size cap, bot filter, per-client rate limit, schema check,
  route matching of `page`, five histogram observations;
- **anchor**: a bare FastAPI app whose one endpoint parses the same JSON body into a
  pydantic model (FastAPI's own body parsing) and observes one prometheus-client
  histogram: the least a Python endpoint recording a beacon can do.

`wrk` posts one realistic beacon (five vitals, no errors) with a browser user agent
and a different `X-Forwarded-For` address per request (uvicorn trusts it from
127.0.0.1), as many visitors would: the rate limiter then refuses nothing and the
measurement is the accepting path, not the 429 one. Rounds are interleaved; the
server runs on CPU 0 and wrk on CPU 1 when there are two. A round with any non-2xx
answer stops the run: a refused beacon is cheaper than an accepted one and would flatter
the result. Timings are wall-clock on a shared machine: compare the rows of one run.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import services  # noqa: E402

PAGE = "/api/items/{item_id}"  # a route template of the example app
BEACON = (
    '{"page":"' + PAGE + '","device":"desktop","vitals":'
    '{"lcp":1830.5,"inp":96.0,"cls":0.041,"fcp":912.2,"ttfb":143.7},"errors":[]}'
)
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
)
PATHS = {"lightkeeper": "/lightkeeper/rum", "anchor": "/rum"}

# Every request from another visitor address (65 536 of them, more than the limiter
# tracks), so no bucket ever runs dry; the body is the same realistic beacon.
LUA = """
local n = 0
wrk.method = "POST"
wrk.body = [[%(body)s]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "%(agent)s"
request = function()
  n = n + 1
  local i = n %% 65536
  wrk.headers["X-Forwarded-For"] = string.format("10.%%d.%%d.1", math.floor(i / 256), i %% 256)
  return wrk.format(nil, "%(path)s")
end
"""


class AnchorVitals(BaseModel):
    lcp: float | None = None
    inp: float | None = None
    cls: float | None = None
    fcp: float | None = None
    ttfb: float | None = None


class AnchorBeacon(BaseModel):
    """The beacon's shape, parsed the way a hand-written FastAPI endpoint would."""

    page: str
    device: Literal["mobile", "tablet", "desktop"]
    vitals: AnchorVitals | None = None
    errors: list[dict[str, str]] = []


def anchor_app() -> Any:
    """Bare FastAPI: pydantic parses the beacon, one histogram records it."""
    from fastapi import FastAPI, Response
    from prometheus_client import Histogram

    lcp = Histogram("anchor_lcp_seconds", "anchor", ["page", "device"])
    app = FastAPI()

    @app.post("/rum", response_class=Response)
    def rum(beacon: AnchorBeacon) -> Response:
        if beacon.vitals is not None and beacon.vitals.lcp is not None:
            lcp.labels(beacon.page, beacon.device).observe(beacon.vitals.lcp / 1000)
        return Response(status_code=204)

    return app


def serve(name: str, port: int) -> None:
    import uvicorn

    if name == "anchor":
        app = anchor_app()
    else:
        from examples.saas_app.main import create_app

        app = create_app(f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}")
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="error",
        access_log=False,
        loop="uvloop",
        http="httptools",
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
    )


def _pinned(cpu: int | None) -> Any:
    return None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))


def wrk(
    port: int, name: str, seconds: int, connections: int, cpu: int | None, script: Path
) -> dict[str, float]:
    script.write_text(LUA % {"body": BEACON, "agent": USER_AGENT, "path": PATHS[name]})
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=_pinned(cpu),
    ).stdout
    refused = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if refused:
        raise SystemExit(f"{name}: {refused.group(1)} beacons refused; the run would measure refusals\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {"rps": rps, "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return

    server_cpu, wrk_cpu = (0, 1) if args.pin and (os.cpu_count() or 1) >= 2 else (None, None)
    ports = {name: services.free_port() for name in PATHS}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    servers = {
        name: subprocess.Popen(
            [sys.executable, "-m", "bench.rum_throughput", "--serve", name, "--port", str(port)],
            cwd=ROOT,
            env=env,
            preexec_fn=_pinned(server_cpu),
        )
        for name, port in ports.items()
    }
    results: dict[str, list[dict[str, float]]] = {name: [] for name in PATHS}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp) / "beacon.lua"
            for name, port in ports.items():
                services.wait_for_port(port, timeout=60)
                wrk(port, name, 2, args.connections, wrk_cpu, script)  # warm-up, not recorded
            for _ in range(args.rounds):
                for name, port in ports.items():
                    results[name].append(wrk(port, name, args.seconds, args.connections, wrk_cpu, script))
    finally:
        for server in servers.values():
            server.terminate()
            server.wait(timeout=10)

    print(
        f"RUM beacons, wrk -t1 -c{args.connections} -d{args.seconds}s x {args.rounds} interleaved rounds"
        f"{' (server on CPU 0, wrk on CPU 1)' if server_cpu is not None else ''}; medians over rounds"
    )
    print("| server | beacons/s | p99 ms |")
    print("|---|---:|---:|")
    for name, rounds in results.items():
        rps = statistics.median(r["rps"] for r in rounds)
        p99 = statistics.median(r["p99_ms"] for r in rounds)
        print(f"| {name} | {rps:.0f} | {p99:.2f} |")
    ratio = statistics.median(
        lk["rps"] / anchor["rps"]
        for lk, anchor in zip(results["lightkeeper"], results["anchor"], strict=True)
    )
    print(f"lightkeeper / anchor beacons/s = {ratio:.2f} (median of per-round ratios)")
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
