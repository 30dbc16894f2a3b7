"""Cost of `lightkeeper.usage()`, `auth_attempt()` and `track_dependency()` per call,
next to their anchor: a bare prometheus-client `Counter.labels(...).inc()`.

`track_dependency` is measured both ways it is used, as a `with` block and as a
decorator, each against the same work done by hand with prometheus-client (time the
call, count it, observe its duration): inline for the block, inside a plain
`functools.wraps` decorator for the decorator.

    .venv/bin/python -m bench.usage [--calls 200000] [--rounds 7]

Interleaved rounds (anchor, then each variant) so machine noise hits both alike; the
median per-call time is reported with its ratio to the anchor. Target from issue 14:
`usage()` <= 1.5 x the anchor.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram

import lightkeeper
from lightkeeper.sdk import usage as usage_module

if TYPE_CHECKING:
    from lightkeeper.sdk.settings import Settings

TARGET = 1.5


def _per_call(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    registry = CollectorRegistry()
    anchor_counter = Counter("bench_usage_events", "anchor", ["event", "plan"], registry=registry)
    anchor_histogram = Histogram(
        "bench_dependency_seconds", "anchor", ["dependency", "operation"], registry=registry
    )
    usage_module.configure(
        lightkeeper_settings(usage_events={"content_item_created": {"plan": ["free", "pro", "team"]}})
    )

    def anchor() -> None:
        anchor_counter.labels("content_item_created", "pro").inc()

    def anchor_dependency() -> None:
        start = time.perf_counter()
        anchor_counter.labels("email", "send").inc()
        anchor_histogram.labels("email", "send").observe(time.perf_counter() - start)

    def anchor_decorator(func: Callable[[], None]) -> Callable[[], None]:
        @functools.wraps(func)
        def timed() -> None:
            start = time.perf_counter()
            func()
            anchor_counter.labels("email", "send").inc()
            anchor_histogram.labels("email", "send").observe(time.perf_counter() - start)

        return timed

    @anchor_decorator
    def anchor_decorated() -> None:
        pass

    @lightkeeper.track_dependency("email", "send")
    def decorated() -> None:
        pass

    def declared_usage() -> None:
        lightkeeper.usage("content_item_created", plan="pro")

    def auth() -> None:
        lightkeeper.auth_attempt(outcome="success", method="password")

    def dependency() -> None:
        with lightkeeper.track_dependency("email", "send"):
            pass

    variants: dict[str, tuple[Callable[[], object], str]] = {
        "usage(event, plan=...)": (declared_usage, "counter"),
        "auth_attempt(...)": (auth, "counter"),
        "track_dependency (with)": (dependency, "counter+histogram"),
        "track_dependency (decorator)": (decorated, "counter+histogram, decorator"),
    }
    anchors = {
        "counter": anchor,
        "counter+histogram": anchor_dependency,
        "counter+histogram, decorator": anchor_decorated,
    }
    for fn in [*anchors.values(), *(v for v, _ in variants.values())]:
        _per_call(fn, 1000)  # warm: children resolved, code paths hot

    times: dict[str, list[float]] = {name: [] for name in [*anchors, *variants]}
    for _ in range(args.rounds):
        for name, fn in anchors.items():
            times[name].append(_per_call(fn, args.calls))
        for name, (fn, _kind) in variants.items():
            times[name].append(_per_call(fn, args.calls))

    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"{'variant':30} {'ns/call':>9} {'anchor':>29} {'ratio':>6}")
    for name in anchors:
        print(f"{'anchor: ' + name:30} {median[name] * 1e9:9.0f} {'':>29} {1.0:6.2f}")
    for name, (_fn, kind) in variants.items():
        ratio = median[name] / median[kind]
        print(f"{name:30} {median[name] * 1e9:9.0f} {kind:>29} {ratio:6.2f}")
    usage_ratio = median["usage(event, plan=...)"] / median["counter"]
    verdict = "meets" if usage_ratio <= TARGET else "MISSES"
    print(f"usage() is {usage_ratio:.2f} x a bare labels().inc(): {verdict} the {TARGET} x target")


def lightkeeper_settings(**settings: Any) -> Settings:
    from lightkeeper.sdk.settings import load_settings

    return load_settings(environment="prod", **settings)


if __name__ == "__main__":
    main()
