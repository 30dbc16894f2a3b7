"""Rule evaluation time of the SLO rules: long windows over raw counters vs 5-minute counts.

Backfills 30 days of `http_requests_total` (ROUTES x 5 status codes x INSTANCES series)
with `promtool tsdb create-blocks-from openmetrics`, then starts a real `prometheus` on
a copy of those blocks twice: once with the SLO rules as they were (every window an
`increase`/`rate` over the raw counters) and once as generated now (windows of a day
and more add up the recorded 5-minute counts). For each it reads the SLO group's
`evaluationTime` from `/api/v1/rules` over several evaluations and prints the medians.

To stay within minutes on two cores, the raw counters are backfilled every
RAW_STEP (20 min) for 30 days and every 15 s for the last hour only (so the short
windows and the 5-minute counts see real scrapes). The old rules scan
30d/RAW_STEP samples per series per window instead of 30d/15s, so their real cost is
about 80x higher than measured here: the ratio printed is a lower bound. The new rules'
30 days of 5-minute counts are backfilled as the generated rules would have recorded
them (exact for these linear counters), so both runs compute the same budget.

    .venv/bin/python -m bench.rule_eval [--routes 50] [--instances 4] [--evaluations 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from lightkeeper.spec.loader import parse_spec
from lightkeeper.stack import slo_counts
from lightkeeper.stack.rule_defs import AlertDef, RuleGroup
from lightkeeper.stack.rules import rule_groups

DAY = 86400
RAW_STEP = 1200
SCRAPE = 15
RECENT = 3600
CODES = ("200", "201", "404", "500", "503")
SPEC = """
service: bench
environments:
  prod:
    targets: ["app:8000"]
prometheus:
  retention: 35d
slos:
  - name: availability
    objective: 99.9
    period: 30d
    sli: {kind: availability}
"""


def _rate(route: int, code: str) -> float:
    """Requests per second of one series: uneven across routes, few errors."""
    base = 0.5 + (route % 17) * 0.3
    share = {"200": 0.9, "201": 0.07, "404": 0.025, "500": 0.004, "503": 0.001}[code]
    return base * share


def _openmetrics(now: int, routes: int, instances: int) -> Iterator[str]:
    start = now - 30 * DAY
    times = [*range(start, now - RECENT, RAW_STEP), *range(now - RECENT, now + 1, SCRAPE)]
    yield "# TYPE http_requests counter\n"
    for route in range(routes):
        for code in CODES:
            r = _rate(route, code)
            for inst in range(instances):
                labels = (
                    f'environment="prod",instance="app-{inst}:8000",job="bench",method="GET",'
                    f'route="/api/r{route}",service="bench",status_code="{code}"'
                )
                yield "".join(f"http_requests_total{{{labels}}} {r * (t - start):.3f} {t}\n" for t in times)
    # The 5-minute counts the new rules would have recorded over the 30 days.
    total = sum(_rate(r, c) for r in range(routes) for c in CODES) * instances * 300
    good = sum(_rate(r, c) for r in range(routes) for c in CODES if not c.startswith("5")) * instances * 300
    grid = range(start - start % 300 + 300, now - RECENT, 300)
    for name, value in (("slo:sli_total:increase5m", total), ("slo:sli_good:increase5m", good)):
        yield f"# TYPE {name.replace(':', '_')} gauge\n"
        labels = 'environment="prod",service="bench",slo="availability"'
        yield "".join(f"{name}{{{labels}}} {value:.3f} {t}\n" for t in grid)
    yield "# EOF\n"


def _rule_file(groups: list[RuleGroup]) -> str:
    out = []
    for g in groups:
        if "-slo-" not in g.name:
            continue
        rules: list[dict[str, Any]] = []
        for r in g.rules:
            if isinstance(r, AlertDef):
                rules.append(
                    {"alert": r.name, "expr": r.expr, "for": r.for_, "labels": {"severity": r.severity}}
                )
            else:
                rules.append({"record": r.record, "expr": r.expr, "labels": dict(r.labels)})
        out.append({"name": g.name, **({"interval": g.interval} if g.interval else {}), "rules": rules})
    return yaml.safe_dump({"groups": out}, sort_keys=False)


def rules(old: bool) -> str:
    """The generated SLO rules; `old` builds every window from the raw counters, as before."""
    spec = parse_spec(SPEC)
    if not old:
        return _rule_file(rule_groups(spec))
    keep = slo_counts.from_counts
    slo_counts.from_counts = lambda ctx, window: False  # every window from the raw counters
    try:
        return _rule_file(rule_groups(spec))
    finally:
        slo_counts.from_counts = keep


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.load(resp)


def measure(blocks: Path, rule_text: str, evaluations: int, work: Path) -> dict[str, Any]:
    """Median evaluation time of each SLO group over `evaluations` evaluations, and the budget."""
    data = work / "data"
    shutil.copytree(blocks, data)
    (work / "rules.yml").write_text(rule_text)
    config = {"global": {"evaluation_interval": "15s"}, "rule_files": ["rules.yml"]}
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = _port()
    cmd = [
        "prometheus",
        f"--config.file={work / 'prometheus.yml'}",
        f"--storage.tsdb.path={data}",
        "--storage.tsdb.retention.time=60d",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    seen: dict[str, dict[str, float]] = {}
    try:
        deadline = time.monotonic() + 60 + 20 * evaluations
        while time.monotonic() < deadline:
            try:
                groups = _get(f"{base}/api/v1/rules")["data"]["groups"]
            except OSError:
                time.sleep(1)
                continue
            for g in groups:
                if g.get("lastEvaluation", "").startswith("0001"):
                    continue
                seen.setdefault(g["name"], {})[g["lastEvaluation"]] = float(g["evaluationTime"])
            if seen and all(len(v) >= evaluations for v in seen.values()):
                break
            time.sleep(2)
        query = urllib.parse.quote("slo:error_budget:remaining_ratio")
        budget = _get(f"{base}/api/v1/query?query={query}")["data"]["result"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {
        "groups": {name: statistics.median(list(v.values())[-evaluations:]) for name, v in seen.items()},
        "budget": float(budget[0]["value"][1]) if budget else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=int, default=50)
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--evaluations", type=int, default=5)
    args = parser.parse_args()
    series = args.routes * len(CODES) * args.instances
    with tempfile.TemporaryDirectory(prefix="lk-rule-eval-") as tmp:
        root = Path(tmp)
        now = int(time.time())
        began = time.monotonic()
        with (root / "input.om").open("w") as fh:
            fh.writelines(_openmetrics(now, args.routes, args.instances))
        subprocess.run(
            [
                "promtool",
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                "--max-block-duration=240h",  # hidden flag; 2h blocks would make 360 of them
                str(root / "input.om"),
                str(root / "blocks"),
            ],
            check=True,
            capture_output=True,
        )
        (root / "input.om").unlink()
        print(f"{series} raw series, 30 days; backfilled in {time.monotonic() - began:.0f} s")
        results = {}
        for label, old in (("old", True), ("new", False)):
            work = root / label
            work.mkdir()
            results[label] = measure(root / "blocks", rules(old), args.evaluations, work)
    old_t = sum(results["old"]["groups"].values())
    new_t = sum(results["new"]["groups"].values())
    print(f"{'rules':<6} {'groups':<40} {'eval s (median)':>16} {'budget left':>12}")
    for label in ("old", "new"):
        r = results[label]
        names = ", ".join(sorted(r["groups"]))
        total = sum(r["groups"].values())
        print(f"{label:<6} {names:<40} {total:>16.4f} {r['budget']!s:>12}")
    print(f"old / new: {old_t / new_t:.1f}x" if new_t else "new took no time")


if __name__ == "__main__":
    main()
