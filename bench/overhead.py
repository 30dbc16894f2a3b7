"""Per-request overhead of Lightkeeper against the instrumentation teams use today.

    .venv/bin/python bench/overhead.py                 # in-process + wrk, all variants
    .venv/bin/python bench/overhead.py --quick         # smoke run
    .venv/bin/python bench/overhead.py --variants pfi,stack,lightkeeper --no-wrk

In-process: each variant's app lives in its own worker process and is called
directly as an ASGI app (no sockets), sequentially, N requests per block. Rounds are
interleaved (every variant once per round, shuffled), and the overhead of a variant
is the median over rounds of (variant - bare) in the same round, so machine drift
hits everyone alike. Under real sockets, each variant is served by uvicorn
(uvloop + httptools, one worker) and driven by `wrk` on 127.0.0.1: all servers start
once, rounds are interleaved, the server runs on CPU 0 and wrk on CPU 1 (`--no-pin`
lets the scheduler choose), and the throughput ratio is the median over rounds of
variant / bare in the same round. Server CPU time per request is reported beside it.

The report prints the targets of issue 2 as ratios against the anchors measured in
the same run. This is a benchmark, not a test: it never fails on a slow machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench.variants import FAIL_PATH, ITEM_PATH, VARIANTS  # noqa: E402

HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"user-agent", b"lightkeeper-bench/1"),
    (b"accept", b"*/*"),
    (b"accept-encoding", b"gzip"),
]


# ---------------------------------------------------------------- in-process worker
def _scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": HEADERS,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }


async def _drive(app: Any, path: str, n: int) -> dict[int, int]:
    template = _scope(path)
    statuses: dict[int, int] = {}
    for _ in range(n):
        scope = dict(template)
        scope["headers"] = list(HEADERS)
        box = {"read": False, "done": False, "status": 0}

        async def receive(box: dict[str, Any] = box) -> dict[str, Any]:
            if not box["read"]:
                box["read"] = True
                return {"type": "http.request", "body": b"", "more_body": False}
            if box["done"]:
                return {"type": "http.disconnect"}
            await asyncio.Event().wait()  # an idle keep-alive connection
            raise AssertionError  # unreachable

        async def send(message: dict[str, Any], box: dict[str, Any] = box) -> None:
            if message["type"] == "http.response.start":
                box["status"] = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                box["done"] = True

        with contextlib.suppress(Exception):  # servers swallow what the app re-raises
            await app(scope, receive, send)
        statuses[box["status"]] = statuses.get(box["status"], 0) + 1
    # Work a variant defers is still its cost: Lightkeeper's batched metrics and
    # request lines are applied and written inside the timed block.
    deferred = sys.modules.get("lightkeeper.sdk.write_behind")
    if deferred is not None:
        deferred.flush_all()
    return statuses


def worker(name: str) -> None:
    """Build one variant, then answer timing requests (JSON lines on stdin)."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # every variant's logs go to /dev/null
    os.dup2(devnull, 2)
    app = VARIANTS[name][1]()
    loop = asyncio.new_event_loop()
    ok = loop.run_until_complete(_drive(app, ITEM_PATH, 1))
    bad = loop.run_until_complete(_drive(app, FAIL_PATH, 1))
    proto.write(json.dumps({"ready": True, "item": list(ok), "fail": list(bad)}) + "\n")
    for line in sys.stdin:
        cmd = json.loads(line)
        loop.run_until_complete(_drive(app, cmd["path"], cmd["warmup"]))
        import gc

        gc.collect()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        loop.run_until_complete(_drive(app, cmd["path"], cmd["n"]))
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        proto.write(json.dumps({"us": wall / cmd["n"] * 1e6, "cpu_us": cpu / cmd["n"] * 1e6}) + "\n")


class Worker:
    def __init__(self, name: str) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=str(ROOT),
        )
        assert self.proc.stdout is not None
        hello = json.loads(self.proc.stdout.readline() or "{}")
        if not hello.get("ready"):
            raise SystemExit(f"variant {name} failed to start")
        self.item_status, self.fail_status = hello["item"], hello["fail"]

    def time(self, path: str, n: int, warmup: int) -> dict[str, float]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"path": path, "n": n, "warmup": warmup}) + "\n")
        self.proc.stdin.flush()
        return dict(json.loads(self.proc.stdout.readline()))

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


# ---------------------------------------------------------------- real sockets
def serve(name: str, port: int) -> None:
    import uvicorn

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    uvicorn.run(
        VARIANTS[name][1](),
        host="127.0.0.1",
        port=port,
        log_level="error",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pinned(cpu: int | None) -> Any:
    """preexec_fn putting a child on one CPU: the server and wrk then never share a
    core or trade places mid-run, which on a two-core machine is most of the noise."""
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """One variant under uvicorn for the whole wrk phase (started once, warmed once)."""

    def __init__(self, name: str, cpu: int | None) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", name, "--port", str(self.port)],
            cwd=str(ROOT),
            preexec_fn=_pinned(cpu),
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            time.sleep(0.1)
        raise SystemExit(f"uvicorn on port {self.port} did not come up")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def wrk_once(server: Server, seconds: int, cpu: int | None) -> dict[str, float]:
    cpu0 = _cpu_seconds(server.proc.pid)
    out = subprocess.run(
        ["wrk", "-t1", "-c2", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{server.port}{ITEM_PATH}"],
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=_pinned(cpu),
    ).stdout
    cpu_used = _cpu_seconds(server.proc.pid) - cpu0
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {
        "rps": rps,
        "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan"),
        "cpu_us": cpu_used / max(total, 1) * 1e6,
    }


WrkResults = dict[str, list[dict[str, float]]]


def wrk_phase(names: list[str], args: argparse.Namespace, rng: random.Random) -> WrkResults:
    """Every server up at once; rounds interleaved in a shuffled order, so drift of
    the machine hits each variant alike and ratios can be taken round by round."""
    server_cpu, wrk_cpu = (0, 1) if args.pin and (os.cpu_count() or 1) >= 2 else (None, None)
    servers = {n: Server(n, server_cpu) for n in names}
    results: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    try:
        for server in servers.values():
            server.wait_ready()
        for server in servers.values():
            wrk_once(server, 2, wrk_cpu)  # warm-up, not recorded
        for r in range(args.wrk_rounds):
            order = names[:]
            rng.shuffle(order)
            for n in order:
                results[n].append(wrk_once(servers[n], args.wrk_seconds, wrk_cpu))
            print(f"wrk round {r + 1}/{args.wrk_rounds} done", file=sys.stderr)
    finally:
        for server in servers.values():
            server.close()
    return results


# ---------------------------------------------------------------- report
def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def wrk_ratio(wrk: dict[str, list[dict[str, float]]], name: str) -> float:
    """Median over rounds of (variant req/s / bare req/s in the same round)."""
    return _median([x["rps"] / b["rps"] for x, b in zip(wrk[name], wrk["bare"], strict=True)])


def run(args: argparse.Namespace) -> str:
    names = ["bare", *[v for v in args.variants.split(",") if v and v != "bare"]]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    rng = random.Random(args.seed)
    workers = {n: Worker(n) for n in names}
    item: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    fail: dict[str, list[float]] = {n: [] for n in names}
    fail_cpu: dict[str, list[float]] = {n: [] for n in names}
    try:
        for r in range(args.rounds):
            order = names[:]
            rng.shuffle(order)
            for n in order:
                res = workers[n].time(ITEM_PATH, args.requests, args.warmup)
                item[n].append(res["us"])
                cpu[n].append(res["cpu_us"])
                res = workers[n].time(FAIL_PATH, args.fail_requests, args.warmup // 10)
                fail[n].append(res["us"])
                fail_cpu[n].append(res["cpu_us"])
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        for w in workers.values():
            w.close()

    def overhead(series: dict[str, list[float]], n: str) -> float:
        return _median([v - b for v, b in zip(series[n], series["bare"], strict=True)])

    wrk: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    if not args.no_wrk and shutil.which("wrk"):
        wrk = wrk_phase(names, args, rng)

    lines = [
        "| variant | µs/request | overhead µs | CPU overhead µs | failing request overhead µs | "
        "failing request CPU overhead µs | wrk req/s | ratio to bare | server CPU µs/req under wrk | "
        "wrk p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in names:
        rps = _median([x["rps"] for x in wrk[n]])
        p99 = _median([x["p99_ms"] for x in wrk[n]])
        oh = "-" if n == "bare" else f"{overhead(item, n):.1f}"
        lines.append(
            f"| {n} | {_median(item[n]):.1f} | {oh} | "
            f"{'-' if n == 'bare' else f'{overhead(cpu, n):.1f}'} | "
            f"{'-' if n == 'bare' else f'{overhead(fail, n):.1f}'} | "
            f"{'-' if n == 'bare' else f'{overhead(fail_cpu, n):.1f}'} | "
            f"{rps:.0f} | {wrk_ratio(wrk, n):.2f} | "
            f"{_median([x['cpu_us'] for x in wrk[n]]):.1f} | {p99:.2f} |"
        )
    lines.append("")
    lines += _targets(names, item, fail, fail_cpu, wrk, overhead)
    lines.append("")
    lines += [f"- **{n}**: {VARIANTS[n][0]}" for n in names]
    header = (
        f"Overhead benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}; {args.rounds} interleaved rounds x "
        f"{args.requests} requests (GET {ITEM_PATH}) and {args.fail_requests} (GET {FAIL_PATH}); "
        f"wrk -t1 -c2 -d{args.wrk_seconds}s x {args.wrk_rounds} interleaved rounds"
        f"{' (server on CPU 0, wrk on CPU 1)' if args.pin and (os.cpu_count() or 1) >= 2 else ''}; "
        "wrk ratio = median over rounds of variant / bare in the same round."
    )
    return header + "\n\n" + "\n".join(lines) + "\n"


def _targets(
    names: list[str],
    item: dict[str, list[float]],
    fail: dict[str, list[float]],
    fail_cpu: dict[str, list[float]],
    wrk: dict[str, list[dict[str, float]]],
    overhead: Any,
) -> list[str]:
    out = ["Targets (same run):"]

    def ratio(a: str, b: str, series: dict[str, list[float]]) -> str:
        if a not in names or b not in names:
            return "n/a"
        den = overhead(series, b)
        return f"{overhead(series, a) / den:.2f}" if den > 0 else "n/a"

    out.append(f"- lightkeeper / pfi overhead = {ratio('lightkeeper', 'pfi', item)} (target <= 0.50)")
    out.append(f"- lightkeeper / stack overhead = {ratio('lightkeeper', 'stack', item)} (target <= 0.10)")
    out.append(
        f"- failing request, lightkeeper / pfi overhead = {ratio('lightkeeper', 'pfi', fail)} wall, "
        f"{ratio('lightkeeper', 'pfi', fail_cpu)} CPU (target <= 2.00)"
    )
    if wrk.get("lightkeeper") and wrk.get("bare"):
        lk = wrk_ratio(wrk, "lightkeeper")
        out.append(f"- lightkeeper wrk throughput / bare = {lk:.2f} (target >= 0.90)")
    for name, anchor, series, target, what in (
        ("lightkeeper_all_10", "stack", item, "0.25", "all signals at 10 % sampling / stack"),
        ("lightkeeper_all_100", "otel", item, "0.50", "all signals at 100 % sampling / OpenTelemetry"),
        ("lightkeeper_all_10", "sentry", fail, "0.10", "failing request / sentry-sdk failure path"),
    ):
        if name in names:
            out.append(f"- {what} = {ratio(name, anchor, series)} (target <= {target})")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated; bare is always added")
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--fail-requests", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--no-wrk", action="store_true")
    ap.add_argument("--wrk-seconds", type=int, default=10)
    ap.add_argument("--wrk-rounds", type=int, default=5)
    ap.add_argument(
        "--no-pin", dest="pin", action="store_false", help="let the scheduler place the server and wrk"
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="small N, 2 rounds, 3 s wrk")
    ap.add_argument("--out", type=Path, help="also write the report to this file")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=8001, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker)
        return
    if args.serve:
        serve(args.serve, args.port)
        return
    if args.quick:
        args.requests, args.fail_requests, args.warmup, args.rounds = 2000, 200, 200, 2
        args.wrk_seconds, args.wrk_rounds = 3, 1
    report = run(args)
    print(report)
    if args.out:
        args.out.write_text(report)


if __name__ == "__main__":
    main()
