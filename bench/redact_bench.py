"""Redaction: accuracy on the corpus and cost per event, next to sentry-sdk's scrubber.

Run from the repository root:

    .venv/bin/python bench/redact_bench.py [--rounds 7] [--instructions]

Prints recall on the secret corpus, false positives on the normal-event corpus, and
the cost per event of the structlog processor on access-log events (a) as a service
emits them in production (see `production_like` for the model), (b) in the worst
case where every varying field changes on every event, (c) one event repeated, on
(d) a nested business event, and of `redact_text` on log messages.
sentry-sdk's `EventScrubber(recursive=True)` runs on the same dicts in the same
process; it matches exact key names only, so it does strictly less work per field.
A "floor" row (visit every field, do nothing) shows how fast the machine is.

Timings are CPU time of this process, rounds interleaved between candidates. On a
shared machine they still move with other load; `--instructions` also counts the
instructions per event under valgrind (callgrind), which does not.
"""

from __future__ import annotations

import argparse
import copy
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.unit.redaction_corpus import (  # noqa: E402
    NESTED_BUSINESS_EVENT,
    NORMAL_EVENTS,
    SECRET_CASES,
    access_events,
    changed_fields,
    leaked,
    render,
)

from lightkeeper.sdk import redact  # noqa: E402

Batch = Callable[[int], list[Any]]


def accuracy() -> tuple[float, int, int]:
    """(recall on secret cases, events changed, fields changed on normal events)."""
    caught = 0
    for case in SECRET_CASES:
        out = redact.structlog_processor(None, "info", copy.deepcopy(case.event))
        caught += not leaked(case, render(out))
    events_changed = fields_changed = 0
    for event in NORMAL_EVENTS:
        changed = changed_fields(event, redact.structlog_processor(None, "info", copy.deepcopy(event)))
        events_changed += bool(changed)
        fields_changed += len(changed)
    return caught / len(SECRET_CASES), events_changed, fields_changed


# ---------------------------------------------------------------- candidates


def lightkeeper(event: Any) -> Any:
    return redact.structlog_processor(None, "info", event)


def _sentry() -> Callable[[Any], Any] | None:
    try:
        from sentry_sdk.scrubber import EventScrubber
    except ImportError:
        return None
    scrubber = EventScrubber(recursive=True)

    def sentry(event: Any) -> Any:
        scrubber.scrub_dict(event)
        return event

    return sentry


def floor(event: Any) -> Any:
    """The least any processor can do: visit every field once."""
    for _key, value in event.items():
        if value.__class__ is str:
            pass
    return event


CANDIDATES: dict[str, Callable[[Any], Any] | None] = {
    "lightkeeper": lightkeeper,
    "sentry-sdk": _sentry(),
    "floor": floor,
}


# ----------------------------------------------------------------- scenarios

MESSAGE = "could not connect to postgresql://app:s3cr3t@db.internal:5432/app: timeout after 2.0s"
TRACEBACK = "\n".join(f'  File "app/handlers.py", line {i}, in handler: db={MESSAGE}' for i in range(1000))


def repeated(items: list[Any], total: int = 20_000) -> Batch:
    """The same items again and again (their strings are in the redactor's caches)."""
    return lambda _round: items * max(1, total // len(items))


def never_seen(per_round: int = 5_000) -> Batch:
    """Worst case: every event differs from the previous one in every varying field.

    Routes, methods, statuses and user agents rotate on each event, ids and
    timestamps are new, a third of the paths carry a never-seen query string.
    """
    return lambda round_index: access_events(per_round, start=(round_index + 1) * per_round)


def production_like(per_round: int = 5_000) -> Batch:
    """A service's access log as it looks in production (a model, stated here in full).

    Static fields (service, environment, version, logger, event) are the same objects
    each time; 80 % of requests are GETs; routes follow a skewed popularity (the top
    route takes about half the traffic); three client user agents, four client
    addresses behind the load balancer; 90 % status 200; request ids are the
    middleware's 32 hex characters; 10 % of requests are traced (trace and span ids);
    timestamps and paths are new on every event and 10 % of paths carry a query string.
    """
    routes = [
        ("/items/{item_id}", "/items/{}"),
        ("/orgs/{org_id}/workspaces", "/orgs/{}/workspaces"),
        ("/items/{item_id}/comments", "/items/{}/comments"),
        ("/search", "/search?q=launch&page={}"),
        ("/login", "/login"),
        ("/approvals/{approval_id}/approve", "/approvals/{}/approve"),
    ]
    weights = [50, 20, 12, 8, 6, 4]
    agents = [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
        "python-httpx/0.27.0",
        "okhttp/4.12.0",
    ]
    static = {
        "level": "info",
        "logger": "lightkeeper.access",
        "event": "request",
        "service": "api",
        "environment": "prod",
        "version": "1.4.2",
    }

    def batch(round_index: int) -> list[Any]:
        rng = random.Random(round_index)
        events = []
        for i in range(per_round):
            route, path = rng.choices(routes, weights)[0]
            if "?" in path and rng.random() > 0.5:
                path = path.split("?")[0]
            traced = rng.random() < 0.1
            events.append(
                {
                    "timestamp": f"2024-05-04T03:{i // 60 % 60:02d}:{i % 60:02d}.{rng.randrange(10**6):06d}Z",
                    **static,
                    "request_id": f"{rng.getrandbits(128):032x}",
                    "trace_id": f"{rng.getrandbits(128):032x}" if traced else None,
                    "span_id": f"{rng.getrandbits(64):016x}" if traced else None,
                    "method": "GET" if rng.random() < 0.8 else "POST",
                    "route": route,
                    "path": path.format(rng.randrange(1, 10**6)),
                    "status_code": 200 if rng.random() < 0.9 else 404,
                    "duration_ms": round(rng.uniform(0.3, 80.0), 3),
                    "client_ip": f"10.0.0.{rng.randrange(1, 5)}",
                    "user_agent": rng.choice(agents),
                }
            )
        return events

    return batch


SCENARIOS: dict[str, tuple[str, Batch, tuple[str, ...]]] = {
    "access-production": (
        f"access-log events, production-like ({len(access_events(1)[0])} fields)",
        production_like(),
        ("lightkeeper", "sentry-sdk", "floor"),
    ),
    "access-new": (
        "access-log events, all fields rotating",
        never_seen(),
        ("lightkeeper", "sentry-sdk", "floor"),
    ),
    "access-repeated": (
        "access-log event, repeated",
        repeated(access_events(1, start=3)),
        ("lightkeeper", "sentry-sdk", "floor"),
    ),
    "nested": (
        "nested business event, repeated",
        repeated([NESTED_BUSINESS_EVENT]),
        ("lightkeeper", "sentry-sdk"),
    ),
}


def per_call_us(fns: list[Callable[[Any], Any]], batch: Batch, rounds: int) -> list[float]:
    """Median cost of `fn(item)` over the items of a batch, in microseconds, for each fn.

    `batch(i)` gives the items of round i (round -1 warms caches, as a running
    service has them); rounds interleave the candidates so that load from other
    processes hits them alike.
    """
    samples: list[list[float]] = [[] for _ in fns]
    for round_index in range(-1, rounds):
        items = batch(round_index)
        for fn, sample in zip(fns, samples, strict=True):

            def run(fn: Callable[[Any], Any] = fn, items: list[Any] = items) -> None:
                for item in items:
                    fn(item)

            elapsed = timeit.timeit(run, number=1, timer=time.process_time)
            if round_index >= 0:
                sample.append(elapsed / len(items) * 1e6)
    return [statistics.median(sample) for sample in samples]


# -------------------------------------------------------------- instructions


def drive(scenario: str, candidate: str, n: int) -> None:
    """Under valgrind: warm up, then process `n` events (inputs built before either)."""
    fn = CANDIDATES[candidate]
    assert fn is not None
    batch = SCENARIOS[scenario][1]
    warm, items = batch(-1)[:500], batch(0)[:3000]
    for item in warm:
        fn(item)
    for item in items[:n]:
        fn(item)


def instructions_per_event(scenario: str, candidate: str) -> float:
    n1, n2 = 1000, 3000  # the inputs are built identically in both runs: only work differs
    counts = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (n1, n2):
            out = Path(tmp) / f"cg.{n}"
            subprocess.run(
                [
                    "valgrind",
                    "--tool=callgrind",
                    f"--callgrind-out-file={out}",
                    sys.executable,
                    __file__,
                    "--drive",
                    scenario,
                    candidate,
                    str(n),
                ],
                check=True,
                capture_output=True,
                cwd=ROOT,
            )
            summary = re.search(r"^summary:\s+(\d+)", out.read_text(), re.MULTILINE)
            assert summary is not None
            counts.append(int(summary.group(1)))
    return (counts[1] - counts[0]) / (n2 - n1)


# ---------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--instructions", action="store_true", help="also count instructions (valgrind)")
    parser.add_argument("--drive", nargs=3, metavar=("SCENARIO", "CANDIDATE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        drive(args.drive[0], args.drive[1], int(args.drive[2]))
        return

    recall, events_changed, fields_changed = accuracy()
    print(f"corpus: {len(SECRET_CASES)} secret cases, {len(NORMAL_EVENTS)} normal events")
    print(f"recall: {recall:.1%} of secret cases fully masked")
    print(f"false positives: {events_changed} events / {fields_changed} fields changed")
    print()

    title = f"us per event, median of {args.rounds} rounds"
    print(f"{title:44} {'lightkeeper':>12} {'sentry-sdk':>11} {'ratio':>6} {'floor':>7}")
    for label, batch, names in SCENARIOS.values():
        present = [name for name in names if CANDIDATES[name] is not None]
        timed = dict(
            zip(present, per_call_us([CANDIDATES[n] for n in present], batch, args.rounds), strict=True)
        )  # type: ignore[misc]
        ours, theirs, bottom = timed["lightkeeper"], timed.get("sentry-sdk"), timed.get("floor")
        print(
            f"{label:44} {ours:12.2f} "
            + (f"{theirs:11.2f} {ours / theirs:5.2f}x" if theirs else f"{'n/a':>11} {'':>6}")
            + (f" {bottom:7.2f}" if bottom is not None else "")
        )
    for label, text, total in (
        (f"redact_text, {len(MESSAGE)}-char message with a DSN", MESSAGE, 20_000),
        (f"redact_text, {len(TRACEBACK) // 1024} KiB traceback-like text", TRACEBACK, 20),
    ):
        (text_us,) = per_call_us([redact.redact_text], repeated([text], total), args.rounds)
        print(f"{label:44} {text_us:12.2f}")
    print()
    print("ratio = lightkeeper / sentry-sdk EventScrubber(recursive=True).scrub_dict on the same dict;")
    print("the scrubber matches exact key names only (no value patterns, no DSNs, no free text).")

    if args.instructions:
        print()
        print(
            f"{'instructions per event (callgrind)':44} {'lightkeeper':>12} {'sentry-sdk':>11} {'ratio':>6}"
        )
        for scenario, (label, _batch, _names) in SCENARIOS.items():
            ours_i = instructions_per_event(scenario, "lightkeeper")
            theirs_i = instructions_per_event(scenario, "sentry-sdk") if CANDIDATES["sentry-sdk"] else None
            tail = f"{theirs_i:11,.0f} {ours_i / theirs_i:5.2f}x" if theirs_i else f"{'n/a':>11}"
            print(f"{label:44} {ours_i:12,.0f} {tail}", flush=True)


if __name__ == "__main__":
    main()
