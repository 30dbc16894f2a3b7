"""Scrape time against the number of dead workers' files, with and without compaction.

prometheus-client's multi-process mode reads every `.db` file ever written to the
directory, so each worker restart (max_requests, timeouts, OOM kills, deploys) makes
every later scrape slower (prometheus/client_python #204, #367). Lightkeeper folds dead
workers into one archive file per metric type. This measures, for K dead workers:

- the scrape as prometheus-client does it today (MultiProcessCollector over all files);
- lightkeeper's first scrape (which compacts) and the scrapes after it;
- that both expose the same samples.

One worker's files are written for real (a forked child recording realistic traffic
through lightkeeper's own metric families) and copied under K pids that cannot be
alive (above the kernel's pid_max), plus one live copy under this process's pid.

    .venv/bin/python bench/multiprocess_scrape.py [--workers 10 100 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from lightkeeper import catalogue
from lightkeeper.sdk import multiprocess
from lightkeeper.sdk.metrics import family

ROUTES = [
    "/auth/login",
    "/auth/logout",
    "/orgs",
    "/orgs/{org_id}",
    "/orgs/{org_id}/members",
    "/workspaces",
    "/workspaces/{workspace_id}",
    "/items",
    "/items/{item_id}",
    "/items/{item_id}/comments",
    "/items/{item_id}/approve",
    "/items/{item_id}/status",
    "/search",
    "/reports/{report_id}",
    "/exports",
    "/webhooks/{provider}",
    "/billing",
    "/settings",
    "/users/me",
    "/slow",
    "/flaky",
    catalogue.UNMATCHED_ROUTE,
]
METHODS = {"GET": (200, 304, 404), "POST": (201, 400, 422), "PATCH": (200, 409), "DELETE": (204, 404)}


def _one_worker(directory: str) -> None:
    """A worker's traffic through lightkeeper's families: the files a real worker leaves."""
    os.environ[multiprocess.ENV_DIRECTORY] = directory
    rng = random.Random(7)
    family(catalogue.BUILD_INFO).labels("api", "prod", "1.4.2").set(1)
    for route in ROUTES:
        for method in rng.sample(sorted(METHODS), 2):
            for status in METHODS[method]:
                family(catalogue.HTTP_REQUESTS).labels(method, route, str(status)).inc(rng.randint(1, 500))
            duration = family(catalogue.HTTP_REQUEST_DURATION).labels(method, route)
            for _ in range(20):
                duration.observe(rng.lognormvariate(-3, 1))
            family(catalogue.HTTP_REQUESTS_IN_PROGRESS).labels(method, route).set(0)
        family(catalogue.HTTP_REQUEST_SIZE).labels(route).observe(rng.randint(0, 5000))
        family(catalogue.HTTP_RESPONSE_SIZE).labels(route).observe(rng.randint(100, 200_000))
    family(catalogue.HTTP_EXCEPTIONS).labels("/flaky", "TimeoutError").inc(3)
    for check in ("postgres", "redis"):
        family(catalogue.HEALTH_CHECK_UP).labels(check).set(1)
        family(catalogue.HEALTH_CHECK_DURATION).labels(check).observe(0.002)
    for table in ("users", "items", "comments", "orgs"):
        for operation in ("SELECT", "INSERT", "UPDATE"):
            family(catalogue.DB_QUERY_DURATION).labels(operation, table).observe(rng.random() / 20)


def _template() -> tuple[Path, int]:
    template = Path(tempfile.mkdtemp(prefix="lk-bench-template-"))
    child = multiprocessing.get_context("fork").Process(target=_one_worker, args=(str(template),))
    child.start()
    child.join()
    assert child.exitcode == 0 and child.pid is not None
    return template, child.pid


def _populate(directory: Path, template: Path, template_pid: int, dead: int) -> None:
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    for source in template.glob("*.db"):
        prefix = source.name.removesuffix(f"_{template_pid}.db")
        shutil.copyfile(source, directory / f"{prefix}_{os.getpid()}.db")  # one live worker
        for n in range(dead):
            shutil.copyfile(source, directory / f"{prefix}_{pid_max + 1 + n}.db")


class _Lightkeeper:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def collect(self) -> Any:
        return multiprocess.collect(self.directory)


def _registry(collector: Any) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def _time_scrape(registry: CollectorRegistry) -> tuple[float, bytes]:
    started = time.perf_counter()
    body = generate_latest(registry)
    return time.perf_counter() - started, body


def _samples(body: bytes) -> dict[str, float]:
    found = {}
    for line in body.decode().splitlines():
        if not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            found[series] = float(value)
    return found


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    """Equal series and values; histogram sums may differ in the last bits (float addition order)."""
    return a.keys() == b.keys() and all(math.isclose(a[k], b[k], rel_tol=1e-9) for k in a)


def run(workers: list[int], repeats: int) -> list[dict[str, float]]:
    template, template_pid = _template()
    rows = []
    try:
        for dead in workers:
            directory = Path(tempfile.mkdtemp(prefix="lk-bench-metrics-"))
            try:
                rows.append(_measure(directory, template, template_pid, dead, repeats))
            finally:
                shutil.rmtree(directory)
    finally:
        shutil.rmtree(template)
    return rows


def _measure(directory: Path, template: Path, template_pid: int, dead: int, repeats: int) -> dict[str, float]:
    _populate(directory, template, template_pid, dead)
    files_before = len(list(directory.glob("*.db")))
    plain = _registry(MultiProcessCollector(None, path=str(directory)))
    plain_times, plain_bodies = zip(*(_time_scrape(plain) for _ in range(repeats)), strict=True)
    ours = _registry(_Lightkeeper(directory))
    first, first_body = _time_scrape(ours)  # merges one batch of the backlog
    started = time.perf_counter()
    multiprocess.compact(directory)  # the rest of the backlog at once
    rest = time.perf_counter() - started
    after_times, after_bodies = zip(*(_time_scrape(ours) for _ in range(repeats)), strict=True)
    expected = _samples(plain_bodies[0])
    assert _same(_samples(first_body), expected), f"first scrape differs ({dead} dead workers)"
    assert _same(_samples(after_bodies[0]), expected), (
        f"scrape after compaction differs ({dead} dead workers)"
    )
    return {
        "dead": dead,
        "files_before": files_before,
        "files_after": len(list(directory.glob("*.db"))),
        "series": len(expected),
        "plain_ms": statistics.median(plain_times) * 1000,
        "first_ms": first * 1000,
        "rest_ms": rest * 1000,
        "after_ms": statistics.median(after_times) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = run(args.workers, args.repeats)
    batch = multiprocess.COMPACTION_BATCH_FILES
    print(
        "| dead workers | .db files | samples | prometheus-client scrape "
        f"| lightkeeper 1st scrape (merges <= {batch} files) | rest of the backlog (one-off) "
        "| lightkeeper scrape after | files after | speed-up |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['dead']:.0f} | {r['files_before']:.0f} | {r['series']:.0f} | {r['plain_ms']:.0f} ms "
            f"| {r['first_ms']:.0f} ms | {r['rest_ms']:.0f} ms | {r['after_ms']:.0f} ms "
            f"| {r['files_after']:.0f} | {r['plain_ms'] / r['after_ms']:.0f}x |"
        )


if __name__ == "__main__":
    main()
