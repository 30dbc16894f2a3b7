"""The metric fast path must record exactly what prometheus-client's public API does."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Counter, Histogram

from lightkeeper.catalogue import HTTP_DURATION_BUCKETS, SIZE_BUCKETS
from lightkeeper.sdk import fastpath


def samples(registry: CollectorRegistry, name: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name.replace(name, "NAME"), s.labels, s.value)
        for m in registry.collect()
        if m.name == name
        for s in m.samples
        if not s.name.endswith("_created")
    ]


def test_the_prometheus_client_shape_check_passed() -> None:
    assert fastpath._SHAPE_OK, "prometheus-client internals changed: the fast path is off (still correct)"


def test_histograms_match_the_public_api_on_every_bucket_edge() -> None:
    for buckets in (HTTP_DURATION_BUCKETS, SIZE_BUCKETS):
        registry = CollectorRegistry()
        public = Histogram("public", "x", ["route"], buckets=buckets, registry=registry).labels("/a")
        fast = Histogram("fast", "x", ["route"], buckets=buckets, registry=registry).labels("/a")
        parts = fastpath.histogram_parts(fast)
        assert parts is not None
        values = [0.0, *buckets, *(b * 1.0000001 for b in buckets), *(b * 0.9999999 for b in buckets), 1e12]
        for value in values:
            public.observe(value)
            fastpath.observe(fast, parts, value)
        assert samples(registry, "public") == samples(registry, "fast")


def test_counters_match_and_unknown_shapes_fall_back_to_the_public_api() -> None:
    registry = CollectorRegistry()
    counter = Counter("hits", "x", ["k"], registry=registry).labels("v")
    add = fastpath.counter_add(counter)
    for _ in range(3):
        add(1.0)
    assert samples(registry, "hits") == [("NAME_total", {"k": "v"}, 3.0)]

    class Opaque:
        observed: list[float] = []

        def observe(self, value: float) -> None:
            self.observed.append(value)

    opaque = Opaque()
    assert fastpath.histogram_parts(opaque) is None
    fastpath.observe(opaque, None, 2.5)
    assert opaque.observed == [2.5] and not math.isnan(opaque.observed[0])


def test_the_self_check_never_touches_a_multiprocess_directory(tmp_path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "missing-dir")}
    result = subprocess.run(
        [sys.executable, "-c", "import lightkeeper.sdk.fastpath as f; print(f._SHAPE_OK)"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
    assert not (tmp_path / "missing-dir").exists()
