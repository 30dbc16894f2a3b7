"""Long windows from 5-minute counts give what `increase()` over the raw counter gives.

The generated rules build windows of a day and more as `sum_over_time(count[W - 1ms:
step])` over a record `increase(counter[step])` (see `lightkeeper.stack.slo_counts`).
Here both forms run through the real promtool on the same counters, at the test
profile's scale (step 5s, window 60s, one sample a second):

- where samples fall on the grid and the evaluation is grid-aligned, old and new are
  equal, counter resets included (the math says so: the records telescope);
- across a scrape gap longer than a step the new form misses the counter's rise
  during the gap (no record spans it), and extrapolates the records at its edges;
- between grid points the new form still reads the window ending at the last point.

Each side is also checked against its pure reference (`slo_math.increase`,
`slo_math.grid_increase`), so the differences above are the only ones.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lightkeeper import slo_math

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")

STEP = 5
WINDOW = 60
STEPS = 150
OLD = f"increase(x[{WINDOW}s])"
NEW = f"sum_over_time(count5s[{WINDOW - 1}s999ms:{STEP}s])"


def _values(case: str) -> list[float | None]:
    """Counter value per second; None where the scrape is missing."""
    out: list[float | None] = []
    value = 0.0
    for t in range(STEPS + 1):
        value += 3 + (t % 7) * 2 + (40 if 60 <= t < 70 else 0)  # an uneven rate, one burst
        if case == "reset" and t in (47, 101):
            value = float(t % 5)  # the process restarted
        out.append(None if case == "gap" and 52 <= t < 68 else value)
    return out


CASES = ("uneven", "reset", "gap")


def _samples(values: list[float | None]) -> list[slo_math.Sample]:
    return [(float(t), v) for t, v in enumerate(values) if v is not None]


def _old(case: str, t: int) -> float | None:
    return slo_math.increase(_samples(_values(case)), t - WINDOW, t)


def _new(case: str, t: int) -> float | None:
    return slo_math.grid_increase(_samples(_values(case)), t - WINDOW, t, STEP)


def _check(expr: str, t: int, expected: dict[str, float | None]) -> dict[str, Any]:
    """`expr` is within 1e-9 (relative) of the expected value for every case that has one."""
    present = {c: v for c, v in expected.items() if v is not None}
    return {
        "expr": f"abs({expr} - on (case) {_table(present)}) <= bool 1e-9 * abs({expr})",
        "eval_time": f"{t}s",
        "exp_samples": [{"labels": f'{{case="{c}"}}', "value": 1} for c in sorted(present)],
    }


def _table(values: dict[str, float]) -> str:
    """The expected values as a vector with a `case` label, so one query checks every case."""
    parts = [f'label_replace(vector({v!r}), "case", "{c}", "", "")' for c, v in sorted(values.items())]
    return "(" + " or ".join(parts) + ")" if parts else "vector(0)"


def _run(tmp: Path, tests: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    rules = {
        "groups": [{"name": "counts", "rules": [{"record": "count5s", "expr": f"increase(x[{STEP}s])"}]}]
    }
    (tmp / "rules.yml").write_text(yaml.safe_dump(rules))
    series = [
        {"series": f'x{{case="{c}"}}', "values": " ".join("_" if v is None else repr(v) for v in _values(c))}
        for c in CASES
    ]
    suite = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1s",
        "tests": [{"interval": "1s", "input_series": series, "promql_expr_test": tests}],
    }
    (tmp / "suite.yml").write_text(yaml.safe_dump(suite, sort_keys=False))
    return subprocess.run(
        ["promtool", "test", "rules", "suite.yml"], cwd=tmp, capture_output=True, text=True, timeout=300
    )


def test_math_equal_on_the_grid_and_bounded_across_a_gap() -> None:
    """The pure references: where they must agree, where not and by how much."""
    aligned = range(WINDOW + STEP, STEPS + 1, STEP)
    for t in aligned:
        for case in ("uneven", "reset"):
            old, new = _old(case, t), _new(case, t)
            assert old is not None and new is not None
            assert new == pytest.approx(old, rel=1e-12), (case, t)
    values = _values("gap")
    before, after = values[51], values[68]
    assert before is not None and after is not None
    rise = after - before  # what the counter gained during the gap
    differs = []
    for t in aligned:
        old, new = _old("gap", t), _new("gap", t)
        assert old is not None and new is not None
        assert abs(old - new) <= rise, t
        if abs(old - new) > 1e-9:
            differs.append(t)
    assert differs, "a window over the gap must lose the rise during it"
    assert all(t - WINDOW < 68 for t in differs), "windows clear of the gap agree again"
    # Between grid points the new form reads the window ending at the last grid point.
    for t in range(WINDOW + 1, STEPS + 1):
        assert _new("uneven", t) == pytest.approx(_old("uneven", t - t % STEP), rel=1e-12)


def test_promtool_old_and_new_expressions(tmp_path: Path) -> None:
    tests: list[dict[str, Any]] = []
    for t in range(WINDOW + 1, STEPS + 1):
        tests.append(_check(OLD, t, {c: _old(c, t) for c in CASES}))
        tests.append(_check(NEW, t, {c: _new(c, t) for c in CASES}))
        if t % STEP == 0:
            tests.append(
                {
                    "expr": f"abs({OLD} - {NEW}) <= bool 1e-9 * {OLD}",
                    "eval_time": f"{t}s",
                    "exp_samples": [
                        {"labels": f'{{case="{c}"}}', "value": 1 if c != "gap" or _same_gap(t) else 0}
                        for c in CASES
                    ],
                }
            )
    result = _run(tmp_path, tests)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]


def _same_gap(t: int) -> bool:
    old, new = _old("gap", t), _new("gap", t)
    return old is not None and new is not None and abs(old - new) <= 1e-9 * old


def test_promtool_catches_a_plain_range_over_overlapping_records(tmp_path: Path) -> None:
    """Without the subquery grid every record written each second counts: promtool must disagree."""
    t = 100
    result = _run(tmp_path, [_check(f"sum_over_time(count5s[{WINDOW}s])", t, {"uneven": _old("uneven", t)})])
    assert result.returncode != 0
