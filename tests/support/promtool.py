"""Driving the real `promtool test rules` over what `lightkeeper generate --profile test` writes.

The test profile divides every window by 60, so a series of a few hundred one-second
samples exercises windows that are hours long in production; the helpers keep the
generation, the series notation and the promtool run in one place for the tests that
compare Python numbers with the generated rules and dashboards.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

SCALE = 60  # the test profile divides every window and duration by 60


def generate(root: Path, spec_text: str) -> Path:
    """Run the real CLI on `spec_text` in `root`; returns the output directory."""
    (root / "lightkeeper.yaml").write_text(spec_text)
    cmd = [sys.executable, "-c", "from lightkeeper.cli import main; main()", "generate"]
    cmd += ["--spec", "lightkeeper.yaml", "--out", "out", "--profile", "test"]
    subprocess.run(cmd, cwd=root, check=True, capture_output=True, timeout=120)
    return root / "out"


def series_text(values: list[float | None]) -> str:
    """promtool's expanding notation, one value per interval; `_` is a missed scrape."""
    return " ".join("_" if v is None else repr(v) for v in values)


def run(path: Path, suite: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """Write the suite and run `promtool test rules` on it (never raises on a failed test)."""
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return subprocess.run(
        ["promtool", "test", "rules", str(path)], capture_output=True, text=True, timeout=300, check=False
    )


def close_to(expr: str, value: float, tolerance: float = 1e-6) -> dict[str, Any]:
    """An expectation that `expr` (any labels, one or more series) equals `value` within the tolerance.

    `min` folds the labels away; an empty or NaN result compares false, so it fails too.
    """
    bound = tolerance * max(1.0, abs(value))
    return {"expr": f"min(abs(({expr}) - ({value!r})) < bool {bound!r})", "value": 1}
